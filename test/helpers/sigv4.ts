/**
 * SigV4 signing for tests that send raw S3 requests: the SHA-256/HMAC constructor
 * `@smithy/signature-v4` (the signer client-s3 uses) wants, built on node:crypto, and a request
 * signed with a gateway's long-term key over a real socket.
 */
import { createHash, createHmac } from 'node:crypto'
import { request } from 'node:http'
import { SignatureV4 } from '@smithy/signature-v4'
import type { GatewayHandle } from './gateway.js'

/** `Sha256` for `new SignatureV4({ sha256: NodeSha256 })`: a hash without a secret, an HMAC with one. */
export class NodeSha256 {
  readonly #h
  constructor (secret?: string | ArrayBuffer | ArrayBufferView) {
    this.#h = secret === undefined ? createHash('sha256') : createHmac('sha256', typeof secret === 'string' ? secret : ArrayBuffer.isView(secret) ? Buffer.from(secret.buffer, secret.byteOffset, secret.byteLength) : Buffer.from(secret))
  }

  update (data: Uint8Array): void { this.#h.update(data) }
  async digest (): Promise<Uint8Array> { return this.#h.digest() }
}

export interface S3Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Buffer
}

/**
 * An S3 request to the gateway signed with its long-term key (service `s3`, us-east-1) and payload
 * UNSIGNED-PAYLOAD: the body streams, the signature covers the headers. `path` may hold a query.
 */
export async function signedS3Request (gw: GatewayHandle, method: string, path: string, headers: Record<string, string> = {}, body?: Buffer): Promise<S3Answer> {
  const signer = new SignatureV4({ service: 's3', region: 'us-east-1', sha256: NodeSha256, uriEscapePath: false, credentials: { accessKeyId: gw.s3AccessKey, secretAccessKey: gw.s3SecretKey } })
  const [p, q] = path.split('?') as [string, string | undefined]
  const query = Object.fromEntries(new URLSearchParams(q ?? ''))
  const signed = await signer.sign({
    method, protocol: 'http:', hostname: '127.0.0.1', port: gw.s3Port, path: p, query,
    headers: { host: `127.0.0.1:${gw.s3Port}`, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', ...headers }
  })
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: gw.s3Port, method, path, headers: signed.headers as Record<string, string> }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}
