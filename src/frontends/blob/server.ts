import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { isCacheError } from '../../errors.js'
import type { ObjectService } from '../../core/object-service.js'
import { authenticate, authorizeSas, BlobAuthError } from './auth/index.js'
import type { BlobContext, BlobFrontendOptions, ResourceLevel } from './context.js'
import { AZURE_ERRORS, BlobError } from './errors.js'
import { header } from './headers.js'
import { resolveRoute } from './routes.js'
import { XML_DECL, escapeXml } from './xml.js'
import { beginErrorReply, closeGracefully, countClientTraffic, createRawBodyApp, limitRequestsInFlight, listenPort, setOperation } from '../shared/http-app.js'

/** The version we answer with when a client sends none; any version a client sends is echoed. */
export const DEFAULT_API_VERSION = '2025-01-05'
const SERVER_HEADER = 'ckptcache Windows-Azure-Blob/1.0'

interface Target {
  level: ResourceLevel
  account: string
  container: string
  blob: string
  query: URLSearchParams
}

function parseTarget (url: string): Target {
  const q = url.indexOf('?')
  const path = q === -1 ? url : url.slice(0, q)
  const query = new URLSearchParams(q === -1 ? '' : url.slice(q + 1))
  const segments = path.split('/')
  // ['', account, container, ...blob]
  let decoded: string[]
  try {
    decoded = segments.map((s) => decodeURIComponent(s))
  } catch {
    throw new BlobError(400, 'InvalidUri', 'The requested URI does not represent any resource on the server.')
  }
  const account = decoded[1] ?? ''
  const container = decoded[2] ?? ''
  const blob = decoded.slice(3).join('/')
  const level: ResourceLevel = container === '' ? 'service' : blob === '' ? 'container' : 'blob'
  return { level, account, container, blob, query }
}

function errorShape (err: unknown): { status: number, code: string, message: string, headers: Record<string, string> } {
  if (err instanceof BlobError) return { status: err.status, code: err.azureCode, message: err.message, headers: err.headers }
  if (err instanceof BlobAuthError) return { status: err.status, code: err.azureCode, message: err.message, headers: {} }
  if (isCacheError(err)) {
    const shape = AZURE_ERRORS[err.code]
    const headers: Record<string, string> = {}
    if (err.code === 'CC_ERR_INVALID_RANGE' && err.detail.size !== undefined) headers['content-range'] = `bytes */${err.detail.size}`
    if (err.code === 'CC_ERR_SERVER_BUSY') headers['retry-after'] = String(err.detail.retryAfter ?? 1)
    const message = err.code === 'CC_ERR_INSUFFICIENT_STORAGE' || err.code === 'CC_ERR_COPY_SOURCE_NOT_FOUND' ? err.message : shape.message
    return { status: shape.status, code: shape.code, message, headers }
  }
  const code = (err as { code?: string }).code
  if (code === 'FST_ERR_BAD_URL') return { status: 400, code: 'InvalidUri', message: 'The requested URI does not represent any resource on the server.', headers: {} }
  return { status: 500, code: 'InternalError', message: AZURE_ERRORS.CC_ERR_INTERNAL.message, headers: {} }
}

function sendError (err: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const e = errorShape(err)
  if (!beginErrorReply(err, e.status, request, reply)) return
  reply.header('x-ms-error-code', e.code)
  for (const [k, v] of Object.entries(e.headers)) reply.header(k, v)
  if (request.method === 'HEAD' || e.status === 304) {
    reply.removeHeader('content-type')
    reply.send()
    return
  }
  const time = new Date().toISOString().replace('Z', '0000Z')
  const body = `${XML_DECL}<Error><Code>${e.code}</Code><Message>${escapeXml(`${e.message}\nRequestId:${request.id}\nTime:${time}`)}</Message></Error>`
  reply.header('content-type', 'application/xml').send(body)
}

export interface BlobFrontend {
  app: FastifyInstance
  listen (host: string, port: number): Promise<number>
  close (): Promise<void>
}

/** Builds the Azure Blob REST front end over the object core. */
export function createBlobFrontend (service: ObjectService, options: BlobFrontendOptions, logger: FastifyBaseLogger): BlobFrontend {
  const app = createRawBodyApp(logger, () => randomUUID())

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-ms-request-id', request.id)
    reply.header('x-ms-version', header(request.headers, 'x-ms-version') ?? DEFAULT_API_VERSION)
    reply.header('server', SERVER_HEADER)
    const clientId = header(request.headers, 'x-ms-client-request-id')
    if (clientId !== undefined) reply.header('x-ms-client-request-id', clientId)
  })
  if (options.metrics !== undefined) countClientTraffic(app, 'blob', options.metrics)
  if (options.maxRequests !== undefined) limitRequestsInFlight(app, options.maxRequests)
  app.setErrorHandler((err, request, reply) => { sendError(err, request, reply) })
  app.setNotFoundHandler((request, reply) => { sendError(new BlobError(400, 'InvalidUri', 'The requested URI does not represent any resource on the server.'), request, reply) })

  const credentials = { name: options.account, key: options.accountKey }

  app.route({
    method: ['GET', 'HEAD', 'PUT', 'DELETE', 'POST', 'OPTIONS', 'PATCH'],
    url: '/*',
    handler: async (request, reply) => {
      const raw = request.raw
      const url = raw.url ?? '/'
      const auth = authenticate({
        method: request.method,
        url,
        headers: raw.headers,
        remoteAddress: raw.socket.remoteAddress ?? '',
        secure: false
      }, credentials, new Date())
      if (auth.kind === 'anonymous') {
        throw new BlobError(401, 'NoAuthenticationInformation', 'Server failed to authenticate the request. Please refer to the information in the www-authenticate header.',
          { 'www-authenticate': 'Bearer authorization_uri=https://login.microsoftonline.com/common/oauth2/authorize resource_id=https://storage.azure.com' })
      }
      const t = parseTarget(url)
      if (t.account !== options.account) throw new BlobError(400, 'InvalidUri', 'The requested URI does not represent any resource on the server.')
      const route = resolveRoute(request.method, t.level, t.query)
      if (route === undefined) {
        throw new BlobError(501, 'NotImplemented', `The requested operation is not implemented by this gateway: ${request.method} ${t.level}` +
          `${t.query.has('restype') ? ' restype=' + String(t.query.get('restype')) : ''}${t.query.has('comp') ? ' comp=' + String(t.query.get('comp')) : ''}`)
      }
      setOperation(request, route.op)
      if (auth.kind === 'sas') {
        const need = {
          permission: route.permission,
          resourceType: t.level === 'service' ? 'service' : t.level === 'container' ? 'container' : 'object',
          ...(t.container === '' ? {} : { container: t.container }),
          ...(t.blob === '' ? {} : { blob: t.blob })
        } as const
        const createOnly = route.createAllowed === true && !auth.grant.permissions.has('w') &&
          auth.grant.permissions.has('c') && service.store.head(t.container, t.blob) === undefined
        authorizeSas(auth.grant, createOnly ? { ...need, permission: 'c' } : need)
      }
      const ac = new AbortController()
      reply.raw.on('close', () => { if (!reply.raw.writableFinished) ac.abort() })
      const ctx: BlobContext = {
        req: request,
        reply,
        raw,
        account: t.account,
        container: t.container,
        blob: t.blob,
        query: t.query,
        service,
        options,
        auth,
        endpoint: `http://${header(raw.headers, 'host') ?? 'localhost'}/${t.account}`,
        requestId: request.id,
        signal: ac.signal
      }
      await route.handler(ctx)
      return reply
    }
  })

  return {
    app,
    listen: async (host: string, port: number) => listenPort(app, host, port, 'blob front end'),
    close: async () => closeGracefully(app)
  }
}
