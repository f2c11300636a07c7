import { XMLParser, XMLValidator } from 'fast-xml-parser'
import { BlobError } from './errors.js'

export const XML_DECL = '<?xml version="1.0" encoding="utf-8"?>'

// Characters XML 1.0 cannot carry at all (even escaped).
// eslint-disable-next-line no-control-regex
const INVALID_XML = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

export function escapeXml (s: string): string {
  let out = ''
  let last = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    let rep: string | undefined
    if (c === 38) rep = '&amp;'
    else if (c === 60) rep = '&lt;'
    else if (c === 62) rep = '&gt;'
    else if (c === 34) rep = '&quot;'
    else if (c === 39) rep = '&apos;'
    else if (c === 13) rep = '&#xD;'
    if (rep !== undefined) {
      out += s.slice(last, i) + rep
      last = i + 1
    }
  }
  return last === 0 ? s : out + s.slice(last)
}

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

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: true,
  trimValues: true,
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

/** Parses a small request body (block lists, tags) keeping element order; malformed XML is Azure's InvalidXmlDocument. */
export function parseXml (body: string): XmlNode[] {
  const valid = XMLValidator.validate(body)
  if (valid !== true) throw new BlobError(400, 'InvalidXmlDocument', 'XML specified is not syntactically valid.')
  try {
    return toNodes(parser.parse(body) as RawNode[])
  } catch {
    throw new BlobError(400, 'InvalidXmlDocument', 'XML specified is not syntactically valid.')
  }
}
