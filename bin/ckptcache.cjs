#!/usr/bin/env node
// The `ckptcache` command. CommonJS on purpose: this file runs before any
// asynchronous I/O, which is the last moment libuv's thread pool can be sized.
// Every fs call (fsync included) runs on that pool, and Node's default of 4
// threads serializes a node's many small durable writes; an operator's own
// UV_THREADPOOL_SIZE wins. Then it runs the compiled build (dist/, from
// `npm run build`) when there is one, else the TypeScript sources through tsx.
'use strict'
const { existsSync } = require('node:fs')
const { join } = require('node:path')
const { pathToFileURL } = require('node:url')

if (!process.env.UV_THREADPOOL_SIZE) process.env.UV_THREADPOOL_SIZE = '16'

const built = join(__dirname, '..', 'dist', 'src', 'main.js')
if (existsSync(built)) {
  import(pathToFileURL(built).href)
} else {
  import('tsx/esm/api').then(({ register }) => {
    register()
    return import(pathToFileURL(join(__dirname, '..', 'src', 'main.ts')).href)
  })
}
