import t from 'tap'
import { SortedNames } from '../../src/store/sorted-names.js'

function names (...list: string[]): SortedNames {
  const s = new SortedNames()
  for (const n of list) s.add(n)
  return s
}

const dcp = [
  'ckpt/step_100/.metadata', 'ckpt/step_100/__0_0.distcp', 'ckpt/step_100/__1_0.distcp',
  'ckpt/step_200/.metadata', 'ckpt/step_200/__0_0.distcp', 'ckpt/z', 'other'
]

t.test('keeps names sorted and unique', async (t) => {
  const s = names('b', 'a', 'c', 'a')
  t.same([...s], ['a', 'b', 'c'])
  s.delete('b')
  s.delete('missing')
  t.same([...s], ['a', 'c'])
  t.equal(s.size, 2)
})

t.test('flat listing with prefix and paging visits every name once', async (t) => {
  const s = names(...Array.from({ length: 25 }, (_, i) => `p/${String(i).padStart(2, '0')}`), 'q/1')
  const seen: string[] = []
  let next: string | undefined
  let pages = 0
  do {
    const page = s.list({ prefix: 'p/', maxResults: 7, ...(next === undefined ? {} : { startAt: next }) })
    for (const e of page.entries) seen.push(e.name)
    next = page.next
    pages++
  } while (next !== undefined)
  t.equal(pages, 4)
  t.same(seen, Array.from({ length: 25 }, (_, i) => `p/${String(i).padStart(2, '0')}`))
})

t.test('delimiter rolls names up into common prefixes, counted once per page', async (t) => {
  const s = names(...dcp)
  t.same(s.list({ delimiter: '/', maxResults: 100 }).entries, [
    { kind: 'prefix', name: 'ckpt/' }, { kind: 'object', name: 'other' }
  ])
  t.same(s.list({ prefix: 'ckpt/', delimiter: '/', maxResults: 100 }).entries, [
    { kind: 'prefix', name: 'ckpt/step_100/' }, { kind: 'prefix', name: 'ckpt/step_200/' }, { kind: 'object', name: 'ckpt/z' }
  ])
  const first = s.list({ prefix: 'ckpt/', delimiter: '/', maxResults: 1 })
  t.same(first.entries, [{ kind: 'prefix', name: 'ckpt/step_100/' }])
  t.equal(first.next, 'ckpt/step_200/.metadata')
  const second = s.list({ prefix: 'ckpt/', delimiter: '/', maxResults: 1, startAt: first.next as string })
  t.same(second.entries, [{ kind: 'prefix', name: 'ckpt/step_200/' }])
  const third = s.list({ prefix: 'ckpt/', delimiter: '/', maxResults: 1, startAt: second.next as string })
  t.same(third.entries, [{ kind: 'object', name: 'ckpt/z' }])
  t.equal(third.next, undefined)
})

t.test('startAfter is exclusive, startAt inclusive; multi-character delimiters work', async (t) => {
  const s = names('a', 'b', 'c', 'x--y--z', 'x--w')
  t.same(s.list({ startAfter: 'b', maxResults: 10 }).entries.map((e) => e.name), ['c', 'x--w', 'x--y--z'])
  t.same(s.list({ startAt: 'b', maxResults: 10 }).entries.map((e) => e.name), ['b', 'c', 'x--w', 'x--y--z'])
  t.same(s.list({ prefix: 'x', delimiter: '--', maxResults: 10 }).entries, [{ kind: 'prefix', name: 'x--' }])
  t.same(s.list({ prefix: 'zzz', maxResults: 10 }).entries, [])
})
