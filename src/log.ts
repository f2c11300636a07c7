/**
 * What the parts below the composition root log through: structured fields, then a message (a
 * pino or fastify logger fits). Each part asks for the levels it uses.
 */
export interface Log {
  debug (obj: object, msg: string): void
  info (obj: object, msg: string): void
  warn (obj: object, msg: string): void
  error (obj: object, msg: string): void
}
