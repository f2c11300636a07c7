import { escapeXml, parseXmlNodes, type XmlNode } from '../shared/xml.js'
import { S3Error } from './errors.js'

export { escapeXml }
export type { XmlNode }

export const XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'
export const S3_NS = 'http://s3.amazonaws.com/doc/2006-03-01/'

/** `<tag>value</tag>`; `<tag></tag>` when empty. */
export function el (tag: string, value: string | number | boolean): string {
  return `<${tag}>${typeof value === 'string' ? escapeXml(value) : String(value)}</${tag}>`
}

/** ISO 8601 with milliseconds, as S3 lists times. */
export function isoTime (ms: number): string {
  return new Date(ms).toISOString()
}

/** `encoding-type=url`: what botocore decodes with unquote_plus (`/` kept, everything else reserved encoded). */
export function urlEncodeKey (s: string): string {
  return encodeURIComponent(s).replace(/%2F/g, '/').replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase())
}

export function malformedXml (): S3Error {
  return new S3Error(400, 'MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema')
}

/** Parses a small request body; text values keep their whitespace (keys may have spaces). */
export function parseXml (body: string): XmlNode[] {
  const nodes = parseXmlNodes(body, false)
  if (nodes === undefined) throw malformedXml()
  return nodes
}

/** The single root element of a document, which must be named `name`. */
export function rootElement (body: string, name: string): XmlNode {
  const root = parseXml(body).filter((n) => n.name !== '#text')
  if (root.length !== 1 || root[0]!.name !== name) throw malformedXml()
  return root[0]!
}
