/** S3 Express session credentials: what a token grants, and every way one is refused. */
import t, { type Test } from 'tap'
import { SESSION_TTL_MS, SessionIssuer } from '../../../src/frontends/s3/auth/sessions.js'

const secrets = new Map([['AKID', 'long-term-secret'], ['OTHER', 'other-secret']])
const issuer = (): SessionIssuer => new SessionIssuer((id) => secrets.get(id))

function refused (t: Test, fn: () => unknown, code: string): void {
  t.throws(fn, { name: 'S3AuthError', s3Code: code }, code)
}

t.test('a session grants its bucket and mode for five minutes', async (t) => {
  const now = Date.UTC(2026, 0, 1)
  const creds = issuer().issue('AKID', 'ckpt--use1-az4--x-s3', 'ReadOnly', now)
  t.equal(creds.expiresMs, now + SESSION_TTL_MS)
  t.match(creds.accessKeyId, /^[A-Z0-9]{20}$/)
  t.not(creds.secretAccessKey, 'long-term-secret')
  // Another issuer with the same credentials (a restarted gateway, another node) accepts it.
  const { grant, secretAccessKey } = issuer().verify(creds.accessKeyId, creds.sessionToken, now + SESSION_TTL_MS - 1)
  t.same(grant, { issuer: 'AKID', bucket: 'ckpt--use1-az4--x-s3', mode: 'ReadOnly', expiresMs: now + SESSION_TTL_MS })
  t.equal(secretAccessKey, creds.secretAccessKey)
  const again = issuer().issue('AKID', 'ckpt--use1-az4--x-s3', 'ReadOnly', now)
  t.not(again.sessionToken, creds.sessionToken, 'every session is new')
  t.not(again.secretAccessKey, creds.secretAccessKey)
})

t.test('refusals: expired, tampered, foreign, rotated, unknown', async (t) => {
  const now = Date.UTC(2026, 0, 1)
  const creds = issuer().issue('AKID', 'b--use1-az4--x-s3', 'ReadWrite', now)
  refused(t, () => issuer().verify(creds.accessKeyId, creds.sessionToken, now + SESSION_TTL_MS), 'ExpiredToken')
  const [v, body, sig] = creds.sessionToken.split('.') as [string, string, string]
  const payload = JSON.parse(Buffer.from(body, 'base64url').toString()) as { b: string, m: string, e: number }
  for (const change of [{ b: 'other--use1-az4--x-s3' }, { m: 'w' === payload.m ? 'r' : 'w' }, { e: payload.e + 3600_000 }]) {
    const forged = `${v}.${Buffer.from(JSON.stringify({ ...payload, ...change })).toString('base64url')}.${sig}`
    refused(t, () => issuer().verify(creds.accessKeyId, forged, now), 'InvalidToken')
  }
  refused(t, () => issuer().verify(creds.accessKeyId, `${v}.${body}.${sig.slice(0, -2)}AA`, now), 'InvalidToken')
  refused(t, () => issuer().verify(creds.accessKeyId, 'not-a-token', now), 'InvalidToken')
  refused(t, () => issuer().verify(creds.accessKeyId, `${v}.!!!.${sig}`, now), 'InvalidToken')
  const other = issuer().issue('AKID', 'b--use1-az4--x-s3', 'ReadWrite', now)
  refused(t, () => issuer().verify(other.accessKeyId, creds.sessionToken, now), 'InvalidToken')
  const rotated = new SessionIssuer((id) => id === 'AKID' ? 'rotated-secret' : undefined)
  refused(t, () => rotated.verify(creds.accessKeyId, creds.sessionToken, now), 'InvalidToken')
  refused(t, () => issuer().issue('NOBODY', 'b--use1-az4--x-s3', 'ReadWrite', now), 'InvalidAccessKeyId')
})
