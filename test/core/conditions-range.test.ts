import t from 'tap'
import { checkReadConditions, checkWriteConditions, parseEtagList } from '../../src/core/conditions.js'
import { parseRange, resolveRange } from '../../src/core/range.js'
import { isCacheError } from '../../src/errors.js'

const v = { etag: '0xABC', lastModifiedMs: Date.UTC(2026, 0, 1, 12, 0, 0, 500) }
const code = (fn: () => void): string | undefined => {
  try {
    fn()
    return undefined
  } catch (err) {
    return isCacheError(err) ? err.code : 'other'
  }
}

t.test('etag lists parse quoted, weak and star forms', async (t) => {
  t.same(parseEtagList('"0xABC", W/"0xDEF"'), ['0xABC', '0xDEF'])
  t.same(parseEtagList('*'), ['*'])
  t.equal(parseEtagList(undefined), undefined)
  t.equal(parseEtagList(' '), undefined)
})

t.test('read conditions: 412 for If-Match / If-Unmodified-Since, 304 for If-None-Match / If-Modified-Since', async (t) => {
  t.equal(code(() => checkReadConditions(v, { ifMatch: ['0xABC'] })), undefined)
  t.equal(code(() => checkReadConditions(v, { ifMatch: ['*'] })), undefined)
  t.equal(code(() => checkReadConditions(v, { ifMatch: ['0xDEF'] })), 'CC_ERR_CONDITION_NOT_MET')
  t.equal(code(() => checkReadConditions(v, { ifNoneMatch: ['0xABC'] })), 'CC_ERR_NOT_MODIFIED')
  t.equal(code(() => checkReadConditions(v, { ifNoneMatch: ['0xDEF'] })), undefined)
  // HTTP dates have whole seconds: the same second is "not modified since".
  t.equal(code(() => checkReadConditions(v, { ifModifiedSinceMs: Date.UTC(2026, 0, 1, 12, 0, 0) })), 'CC_ERR_NOT_MODIFIED')
  t.equal(code(() => checkReadConditions(v, { ifModifiedSinceMs: Date.UTC(2026, 0, 1, 11, 59, 59) })), undefined)
  t.equal(code(() => checkReadConditions(v, { ifUnmodifiedSinceMs: Date.UTC(2026, 0, 1, 11, 59, 59) })), 'CC_ERR_CONDITION_NOT_MET')
  t.equal(code(() => checkReadConditions(v, { ifUnmodifiedSinceMs: Date.UTC(2026, 0, 1, 12, 0, 0) })), undefined)
})

t.test('write conditions: If-None-Match * on an existing object is "exists"; If-Match on a missing one fails', async (t) => {
  t.equal(code(() => checkWriteConditions(v, { ifNoneMatch: ['*'] })), 'CC_ERR_OBJECT_EXISTS')
  t.equal(code(() => checkWriteConditions(undefined, { ifNoneMatch: ['*'] })), undefined)
  t.equal(code(() => checkWriteConditions(v, { ifNoneMatch: ['0xABC'] })), 'CC_ERR_CONDITION_NOT_MET')
  t.equal(code(() => checkWriteConditions(undefined, { ifMatch: ['0xABC'] })), 'CC_ERR_CONDITION_NOT_MET')
  t.equal(code(() => checkWriteConditions(v, { ifMatch: ['0xABC'] })), undefined)
  t.equal(code(() => checkWriteConditions(v, { ifModifiedSinceMs: v.lastModifiedMs + 5000 })), 'CC_ERR_CONDITION_NOT_MET')
})

t.test('ranges parse and clamp; empty objects and ranges past the end are unsatisfiable', async (t) => {
  t.same(parseRange('bytes=0-33554431'), { kind: 'from', start: 0, end: 33554431 })
  t.same(parseRange('bytes=5-'), { kind: 'from', start: 5 })
  t.same(parseRange('bytes=-10'), { kind: 'suffix', length: 10 })
  t.equal(parseRange('bytes=5-1'), undefined)
  t.equal(parseRange('items=0-1'), undefined)
  t.equal(parseRange('bytes=0-1,4-5'), undefined)
  t.same(resolveRange({ kind: 'from', start: 0, end: 33554431 }, 10), { start: 0, end: 9 })
  t.same(resolveRange({ kind: 'suffix', length: 4 }, 10), { start: 6, end: 9 })
  t.same(resolveRange({ kind: 'suffix', length: 40 }, 10), { start: 0, end: 9 })
  t.equal(resolveRange({ kind: 'from', start: 0 }, 0), 'unsatisfiable')
  t.equal(resolveRange({ kind: 'from', start: 10 }, 10), 'unsatisfiable')
})
