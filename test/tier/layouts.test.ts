/**
 * Every layout strategy through the real gateway process against Azurite: a 4-rank DCP checkpoint,
 * its `.metadata` and names that look like the strategy's own prefixes are written through a
 * writeback gateway and flushed; Azure then holds exactly the blob names `createLayout(spec)`
 * gives; listings (flat and by `/`, two entries a page) through the writer and through a gateway
 * with a wiped cache give the logical names back; the wiped gateway reads every name through and
 * deletes them, cached or not, and Azure is left with nothing of the container.
 */
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import type { BlobServiceClient, ContainerClient } from '@azure/storage-blob'
import { createLayout } from '../../src/upstream/layout.js'
import { startAzurite, type AzuriteHandle } from '../helpers/azurite.js'
import { KiB, azuriteService, blobService, flushUntilDone, readAll, tierGateway, upstreamNames } from '../helpers/tier-read.js'

let azurite: AzuriteHandle
let upstream: BlobServiceClient

t.before(async () => {
  azurite = await startAzurite()
  upstream = azuriteService(azurite)
})
t.teardown(async () => { await azurite?.stop() })

interface Case {
  spec: string
  container: string
  upstreamContainer?: string
}

const CASES: Case[] = [
  { spec: 'identity', container: 'lay-identity' },
  { spec: 'hash:2', container: 'lay-hash' },
  { spec: 'round-robin:a,b,c', container: 'lay-round-robin' },
  { spec: 'binary:4', container: 'lay-binary' },
  { spec: 'hex:2', container: 'lay-hex' },
  { spec: 'hex:2', container: 'lay-shared', upstreamContainer: 'shared-up' }
]

/**
 * A 4-rank DCP checkpoint with its marker, a second checkpoint, and names whose first segment is
 * some strategy's prefix (`a/` of round-robin:a,b,c, `10/` of hex:2 and rank 1, `1000/` of
 * binary:4, `26/` of a hash:2 directory).
 */
const NAMES = [
  'ckpt/step-100/__0_0.distcp',
  'ckpt/step-100/__1_0.distcp',
  'ckpt/step-100/__2_0.distcp',
  'ckpt/step-100/__3_0.distcp',
  'ckpt/step-100/.metadata',
  'ckpt/step-200/__1_0.distcp',
  'README.md',
  'a/notes.txt',
  '10/x.bin',
  '1000/y.bin',
  '26/ckpt/z.txt',
  'logs/train log.txt'
].sort()
const DATA = new Map(NAMES.map((n, i) => [n, randomBytes(i * KiB + 100)]))

type Entry = string // an object name, or a common prefix ending in '/'

/** What a listing of `names` under `prefix` gives: every name, or with `/` the names and common prefixes of one level. */
function expected (prefix: string, delimiter?: string): Entry[] {
  const out = new Set<string>()
  for (const n of NAMES) {
    if (!n.startsWith(prefix)) continue
    const d = delimiter === undefined ? -1 : n.indexOf(delimiter, prefix.length)
    out.add(d === -1 ? n : n.slice(0, d + 1))
  }
  return [...out].sort()
}

/** Every page of a flat listing, two entries a page. */
async function listFlat (c: ContainerClient, prefix = ''): Promise<Entry[]> {
  const out: Entry[] = []
  for await (const page of c.listBlobsFlat({ prefix }).byPage({ maxPageSize: 2 })) {
    for (const b of page.segment.blobItems) out.push(b.name)
  }
  return out
}

/** Every page of a `/` listing of one level, two entries a page, prefixes and objects in name order. */
async function listLevel (c: ContainerClient, prefix: string): Promise<Entry[]> {
  const out: Entry[] = []
  for await (const page of c.listBlobsByHierarchy('/', { prefix }).byPage({ maxPageSize: 2 })) {
    const seg = page.segment
    const entries = [...(seg.blobPrefixes ?? []).map((p) => p.name), ...seg.blobItems.map((b) => b.name)].sort()
    out.push(...entries)
  }
  return out
}

/** Flat and level by level, every listing of the container equals the logical one. */
async function checkListings (t: Test, c: ContainerClient, who: string): Promise<void> {
  t.same(await listFlat(c), expected(''), `${who}: flat listing`)
  t.same(await listFlat(c, 'ckpt/step-1'), expected('ckpt/step-1'), `${who}: flat listing under ckpt/step-1`)
  const levels = ['']
  while (levels.length > 0) {
    const prefix = levels.shift() as string
    const got = await listLevel(c, prefix)
    t.same(got, expected(prefix, '/'), `${who}: listing of "${prefix}" by /`)
    for (const e of got) if (e.endsWith('/')) levels.push(e)
  }
}

/** The blob names of the case's container in Azure (under its root with a shared upstream container). */
async function inAzure (c: Case): Promise<string[]> {
  const layout = createLayout(c.spec, c.upstreamContainer === undefined ? {} : { upstreamContainer: c.upstreamContainer })
  const container = layout.toUpstream(c.container, 'x').container
  return await upstreamNames(upstream.getContainerClient(container), c.upstreamContainer === undefined ? undefined : `${c.container}/`)
}

t.jobs = 3
for (const c of CASES) {
  const title = `layout ${c.spec}${c.upstreamContainer === undefined ? '' : ` into upstream container ${c.upstreamContainer}`}`
  t.test(title, async (t) => {
    const args = ['--layout', c.spec, ...(c.upstreamContainer === undefined ? [] : ['--upstream-container', c.upstreamContainer])]
    // The writer, and a gateway with a cache of its own that has never seen the container.
    const [writer, wiped] = await Promise.all([tierGateway(azurite, { args }), tierGateway(azurite, { args })])
    t.teardown(async () => { await Promise.all([writer.stop(), wiped.stop()]) })

    const w = blobService(writer).getContainerClient(c.container)
    await w.create()
    for (const n of NAMES) await w.getBlockBlobClient(n).uploadData(DATA.get(n) as Buffer)
    await flushUntilDone(writer, c.container)

    const layout = createLayout(c.spec, c.upstreamContainer === undefined ? {} : { upstreamContainer: c.upstreamContainer })
    const want = NAMES.map((n) => layout.toUpstream(c.container, n))
    t.ok(want.every((r) => r.container === (want[0] as { container: string }).container), 'one upstream container')
    t.same(await inAzure(c), want.map((r) => r.blob).sort(), 'Azure holds exactly the layout\'s blob names')

    await checkListings(t, w, 'writer')
    const r = blobService(wiped).getContainerClient(c.container)
    await checkListings(t, r, 'wiped cache')

    // One name deleted before anything read it, the others after a read through.
    const [unread, ...rest] = NAMES.filter((n) => n.includes('distcp')).concat(NAMES.filter((n) => !n.includes('distcp'))) as [string, ...string[]]
    await r.getBlobClient(unread).delete()
    for (const n of rest) {
      const body = await readAll((await r.getBlobClient(n).download()).readableStreamBody)
      t.ok(body.equals(DATA.get(n) as Buffer), `${n}: read through`)
    }
    for (const n of rest) await r.getBlobClient(n).delete()
    await flushUntilDone(wiped, c.container)
    t.same(await inAzure(c), [], 'every delete reached Azure')
    t.same(await listFlat(r), [], 'the wiped gateway lists nothing')
  })
}
