import { XMLParser, XMLValidator } from 'fast-xml-parser'
import { S3Error } from './errors.js'

export const XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'
export const S3_NS = 'http://s3.amazonaws.com/doc/2006-03-01/'

export function escapeXml (s: string): string {
  return s.replace(/[&<>"'\r]/g, (c) => c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : c === '\'' ? '&apos;' : '&#xD;')
}

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

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: true,
  trimValues: false,
  parseTagValue: false,
  processEntities: true,
  htmlEntities: false
})

export interface XmlNode {
  name: string
  text: string
  children: XmlNode[]
}

type RawNode = Record<string, unknown>

function toNodes (raw: RawNode[]): XmlNode[] {
  const out: XmlNode[] = []
  for (const item of raw) {
    for (const [key, value] of Object.entries(item)) {
      if (key === ':@' || key === '?xml') continue
      if (key === '#text') {
        out.push({ name: '#text', text: String(value), children: [] })
        continue
      }
      const children = toNodes(Array.isArray(value) ? value as RawNode[] : [])
      const text = children.filter((c) => c.name === '#text').map((c) => c.text).join('')
      out.push({ name: key, text, children: children.filter((c) => c.name !== '#text') })
    }
  }
  return out
}

export function malformedXml (): S3Error {
  return new S3Error(400, 'MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema')
}

/** Parses a small request body; text values keep their whitespace (keys may have spaces). */
export function parseXml (body: string): XmlNode[] {
  if (XMLValidator.validate(body) !== true) throw malformedXml()
  try {
    return toNodes(parser.parse(body) as RawNode[])
  } catch {
    throw malformedXml()
  }
}

/** The single root element of a document, which must be named `name`. */
export function rootElement (body: string, name: string): XmlNode {
  const root = parseXml(body).filter((n) => n.name !== '#text')
  if (root.length !== 1 || root[0]!.name !== name) throw malformedXml()
  return root[0]!
}
