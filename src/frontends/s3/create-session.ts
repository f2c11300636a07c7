import { header, type S3Context } from './context.js'
import { validateDirectoryBucketName } from './directory-buckets.js'
import { S3Error } from './errors.js'
import { S3_NS, XML_DECL, el } from './xml.js'
import type { SessionMode } from './auth/sessions.js'

/**
 * CreateSession: GET /<bucket>?session (the JS SDK sends `/<bucket>//?session=`). Answers
 * credentials scoped to the directory bucket for five minutes; `x-amz-create-session-mode`
 * chooses ReadWrite (default) or ReadOnly. Needs the long-term key, not a session.
 *
 * The bucket need not exist yet: the SDKs open a session before CreateBucket on a custom
 * endpoint, and every operation checks the bucket itself.
 */
export async function createSession (ctx: S3Context): Promise<void> {
  validateDirectoryBucketName(ctx.bucket)
  if (ctx.auth.sessionToken !== undefined) {
    throw new S3Error(403, 'AccessDenied', 'CreateSession must be signed with long-term credentials, not a session.')
  }
  const modeHeader = header(ctx.raw.headers, 'x-amz-create-session-mode') ?? 'ReadWrite'
  if (modeHeader !== 'ReadWrite' && modeHeader !== 'ReadOnly') {
    throw new S3Error(400, 'InvalidArgument', 'Invalid session mode; valid values are ReadWrite and ReadOnly.', { ArgumentName: 'x-amz-create-session-mode', ArgumentValue: modeHeader })
  }
  const mode: SessionMode = modeHeader
  const creds = ctx.sessions.issue(ctx.auth.accessKeyId, ctx.bucket, mode)
  ctx.reply.header('x-amz-server-side-encryption', 'AES256')
  ctx.reply.code(200).header('content-type', 'application/xml').send(`${XML_DECL}<CreateSessionResult xmlns="${S3_NS}"><Credentials>` +
    el('SessionToken', creds.sessionToken) + el('SecretAccessKey', creds.secretAccessKey) + el('AccessKeyId', creds.accessKeyId) +
    el('Expiration', new Date(creds.expiresMs).toISOString().replace(/\.\d{3}Z$/, 'Z')) + '</Credentials></CreateSessionResult>')
}
