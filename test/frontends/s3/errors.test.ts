import t from 'tap'
import { ERROR_CODES } from '../../../src/errors.js'
import { S3_ERRORS } from '../../../src/frontends/s3/errors.js'

t.test('every catalogue code has an S3 mapping with a status, a code and a message', async (t) => {
  for (const code of Object.keys(ERROR_CODES) as Array<keyof typeof ERROR_CODES>) {
    const m = S3_ERRORS[code]
    t.ok(m !== undefined, `${code} is mapped`)
    t.ok(m.status >= 300 && m.status < 600, `${code} has an HTTP error status`)
    t.match(m.code, /^[A-Z][A-Za-z0-9]+$/, `${code} maps to an S3-style code`)
    t.ok(m.message.length > 0)
  }
  t.same(Object.keys(S3_ERRORS).sort(), Object.keys(ERROR_CODES).sort(), 'no mapping for a code that does not exist')
})
