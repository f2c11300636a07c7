import { escapeXml, parseXmlNodes, type XmlNode } from '../shared/xml.js'
import { BlobError } from './errors.js'

export { escapeXml }
export type { XmlNode }

export const XML_DECL = '<?xml version="1.0" encoding="utf-8"?>'

// Characters XML 1.0 cannot carry at all (even escaped).
// eslint-disable-next-line no-control-regex
const INVALID_XML = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/** `<tag>value</tag>`, or `<tag />` when empty. */
export function el (tag: string, value: string | number | boolean | undefined): string {
  if (value === undefined || value === '') return `<${tag} />`
  return `<${tag}>${typeof value === 'string' ? escapeXml(value) : String(value)}</${tag}>`
}

/** A blob name element: names XML cannot carry go URL-encoded with `Encoded="true"`, as Azure does. */
export function nameEl (name: string): string {
  if (INVALID_XML.test(name)) return `<Name Encoded="true">${escapeXml(encodeURIComponent(name))}</Name>`
  return `<Name>${escapeXml(name)}</Name>`
}

export function metadataXml (metadata: Record<string, string>): string {
  let s = '<Metadata>'
  for (const [k, v] of Object.entries(metadata)) s += `<${k}>${escapeXml(v)}</${k}>`
  return s + '</Metadata>'
}

/** Parses a small request body (block lists) keeping element order; malformed XML is Azure's InvalidXmlDocument. */
export function parseXml (body: string): XmlNode[] {
  const nodes = parseXmlNodes(body, true)
  if (nodes === undefined) throw new BlobError(400, 'InvalidXmlDocument', 'XML specified is not syntactically valid.')
  return nodes
}
