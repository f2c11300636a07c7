import { XMLParser, XMLValidator } from 'fast-xml-parser'

/** XML helpers both protocol front ends share: escaping, and order-preserving parsing of small request bodies. */

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

export interface XmlNode {
  name: string
  text: string
  children: XmlNode[]
}

type RawNode = Record<string, unknown>

function parserFor (trimValues: boolean): XMLParser {
  return new XMLParser({ preserveOrder: true, ignoreAttributes: true, trimValues, parseTagValue: false, processEntities: true, htmlEntities: false })
}

const trimming = parserFor(true)
const keeping = parserFor(false)

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

/**
 * Parses a small document keeping element order. `trim` drops whitespace around text values
 * (S3 keys may carry meaningful spaces, so S3 keeps them). Returns undefined for malformed XML;
 * each front end answers that with its own error.
 */
export function parseXmlNodes (body: string, trim: boolean): XmlNode[] | undefined {
  if (XMLValidator.validate(body) !== true) return undefined
  try {
    return toNodes((trim ? trimming : keeping).parse(body) as RawNode[])
  } catch {
    return undefined
  }
}
