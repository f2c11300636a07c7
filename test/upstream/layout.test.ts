import { readFile } from 'node:fs/promises'
import t from 'tap'
import { isAzureContainerName } from '../../src/core/container-names.js'
import { upstreamContainerName } from '../../src/upstream/container-map.js'
import { createLayout, rankPrefix, shardRank } from '../../src/upstream/layout.js'

const SPECS = ['identity', 'hash', 'hash:1', 'hash:4', 'round-robin:a,b,c', 'round-robin:p-0,p.1', 'binary', 'binary:1', 'binary:3', 'hex', 'hex:1', 'hex:4']
const CONTAINERS = ['checkpoints', 'my.bucket', 'train--usw2-az1--x-s3']

const dcp = ['ckpt/step-100/.metadata', ...[0, 1, 2, 3].map((r) => `ckpt/step-100/__${r}_0.distcp`)]

// Names chosen to trip a layout: unicode, slashes at the edges, names that look like prefixes,
// shards at the top level, ranks at and past the numeric strategies' widths.
const NAMES = [
  ...dcp,
  'a', 'A', 'a/b', 'a//b', '/a', 'a/', '//', '/', 'a b/c d', '.metadata', '_SUCCESS',
  '__0_0.distcp', '/__5_0.distcp', 'x/__7_12.distcp', 'x/__255_0.distcp', 'x/__256_0.distcp', 'x/__999999999_0.distcp',
  'x/__1000000000_0.distcp', 'x/__01_0.distcp', 'x/___1_0.distcp', 'x/__1_0.distcp.tmp', 'x/__1_.distcp',
  '00000000/readme', '10000000/ckpt/__1_0.distcp', '10000000/10000000/__1_0.distcp', '00/x', '10/__1_0.distcp', '123/x',
  'a/x', 'b/__1_0.distcp', 'c/a/b', '26/ckpt/step-100/.metadata', 'p-0/x', 'p.1/__0_0.distcp', '0/x', '1/x', '01/x',
  'ünïcødé/名前/🙂.bin', 'ckpt/🙂/__3_1.distcp', '\u00e9/x', 'e\u0301/x', 'tab\tname', 'Ω/__2_0.distcp',
]

t.test('toUpstream and fromUpstream are inverse and injective for every strategy and container', async (t) => {
  const problems: string[] = []
  let checked = 0
  for (const spec of SPECS) {
    for (const upstreamContainer of [undefined, 'shared']) {
      const layout = createLayout(spec, upstreamContainer === undefined ? {} : { upstreamContainer })
      for (const container of CONTAINERS) {
        const images = new Map<string, string>()
        for (const name of NAMES) {
          const ref = layout.toUpstream(container, name)
          const key = `${ref.container} ${ref.blob}`
          const where = `${spec} ${upstreamContainer ?? 'per-container'} ${container}: ${JSON.stringify(name)} → ${key}`
          if (images.has(key)) problems.push(`${where} is also the image of ${JSON.stringify(images.get(key))}`)
          images.set(key, name)
          const back = layout.fromUpstream(ref, container)
          if (back !== name) problems.push(`${where} → ${JSON.stringify(back)}`)
          if (upstreamContainer !== undefined && !ref.blob.startsWith(`${container}/`)) problems.push(`${where} is not under ${container}/`)
          if (!isAzureContainerName(ref.container)) problems.push(`${where}: invalid container`)
          checked++
        }
      }
    }
  }
  t.same(problems, [])
  t.equal(checked, SPECS.length * 2 * CONTAINERS.length * NAMES.length)
})

t.test('fromUpstream refuses blobs that no name maps to', async (t) => {
  const binary = createLayout('binary', {})
  // A shard without its prefix, a shard under another rank's prefix, a non-shard under a prefix.
  t.equal(binary.fromUpstream({ container: 'checkpoints', blob: 'ckpt/__1_0.distcp' }, 'checkpoints'), undefined)
  t.equal(binary.fromUpstream({ container: 'checkpoints', blob: '00000000/ckpt/__1_0.distcp' }, 'checkpoints'), undefined)
  t.equal(binary.fromUpstream({ container: 'checkpoints', blob: '10000000/ckpt/readme' }, 'checkpoints'), undefined)
  // A directory named like a prefix is stored under rank 0's prefix, never as is.
  t.equal(binary.fromUpstream({ container: 'checkpoints', blob: '10000000/readme' }, 'checkpoints'), undefined)
  t.same(binary.toUpstream('checkpoints', '10000000/readme'), { container: 'checkpoints', blob: '00000000/10000000/readme' })
  t.equal(binary.fromUpstream({ container: 'checkpoints', blob: '00000000/10000000/readme' }, 'checkpoints'), '10000000/readme')
  // Another container, or the prefix itself.
  t.equal(binary.fromUpstream({ container: 'other', blob: 'ckpt/step-100/.metadata' }, 'checkpoints'), undefined)
  t.equal(binary.fromUpstream({ container: 'checkpoints', blob: '00000000/' }, 'checkpoints'), undefined)

  const hash = createLayout('hash:2', {})
  t.equal(hash.fromUpstream({ container: 'checkpoints', blob: 'ckpt/step-100/.metadata' }, 'checkpoints'), undefined)
  t.equal(hash.fromUpstream({ container: 'checkpoints', blob: '00/ckpt/step-100/.metadata' }, 'checkpoints'), undefined)
  t.equal(hash.fromUpstream({ container: 'checkpoints', blob: '26/ckpt/step-100/.metadata' }, 'checkpoints'), 'ckpt/step-100/.metadata')

  const shared = createLayout('identity', { upstreamContainer: 'shared' })
  t.equal(shared.fromUpstream({ container: 'shared', blob: 'checkpoints/a' }, 'checkpoints'), 'a')
  t.equal(shared.fromUpstream({ container: 'shared', blob: 'other/a' }, 'checkpoints'), undefined)
  t.equal(shared.fromUpstream({ container: 'shared', blob: 'checkpointsx/a' }, 'checkpoints'), undefined)
  t.equal(shared.fromUpstream({ container: 'checkpoints', blob: 'checkpoints/a' }, 'checkpoints'), undefined)
  t.equal(shared.fromUpstream({ container: 'shared', blob: 'checkpoints/' }, 'checkpoints'), undefined)
})

t.test('the 4-rank DCP checkpoint lands where each strategy says', async (t) => {
  const blobs = (spec: string): string[] => dcp.map((n) => createLayout(spec, {}).toUpstream('checkpoints', n).blob)
  t.same(blobs('identity'), dcp)
  t.same(blobs('hash'), dcp.map((n) => `26/${n}`))
  t.same(blobs('round-robin:a,b,c'), ['ckpt/step-100/.metadata', 'a/ckpt/step-100/__0_0.distcp', 'b/ckpt/step-100/__1_0.distcp', 'c/ckpt/step-100/__2_0.distcp', 'a/ckpt/step-100/__3_0.distcp'])
  t.same(blobs('binary'), ['ckpt/step-100/.metadata', '00000000/ckpt/step-100/__0_0.distcp', '10000000/ckpt/step-100/__1_0.distcp', '01000000/ckpt/step-100/__2_0.distcp', '11000000/ckpt/step-100/__3_0.distcp'])
  t.same(blobs('hex'), ['ckpt/step-100/.metadata', '00/ckpt/step-100/__0_0.distcp', '10/ckpt/step-100/__1_0.distcp', '20/ckpt/step-100/__2_0.distcp', '30/ckpt/step-100/__3_0.distcp'])
  t.same(createLayout('hex', { upstreamContainer: 'shared' }).toUpstream('checkpoints', dcp[2] as string), { container: 'shared', blob: 'checkpoints/10/ckpt/step-100/__1_0.distcp' })
  t.equal(createLayout('hash', {}).description, 'hash:2')
  t.equal(createLayout('binary', {}).description, 'binary:8')
  t.equal(createLayout('hex', {}).description, 'hex:2')
})

t.test('numeric prefixes match s3torchconnector and stay unique past MINLEN', async (t) => {
  // s3torchconnector's HexPrefixStrategy (min length 10): rank 100 → 4600000000, 256 → 0010000000.
  t.equal(rankPrefix(100, 16, 10), '4600000000')
  t.equal(rankPrefix(256, 16, 10), '0010000000')
  t.equal(rankPrefix(5, 2, 4), '1010')
  // Ranks past 2^MINLEN get longer prefixes instead of wrapping onto smaller ranks.
  t.equal(rankPrefix(256, 2, 8), '000000001')
  t.equal(rankPrefix(4096, 16, 2), '0001')
  const seen = new Set<string>()
  for (let r = 0; r < 5000; r++) seen.add(rankPrefix(r, 2, 3))
  t.equal(seen.size, 5000)
  t.equal(shardRank('ckpt/__12_3.distcp'), 12)
  t.equal(shardRank('__0_0.distcp'), 0)
  t.equal(shardRank('ckpt/x__1_0.distcp'), undefined)
  t.equal(shardRank('ckpt/__1_0.distcp/x'), undefined)
  t.equal(shardRank('ckpt/__1000000000_0.distcp'), undefined)
})

t.test('container names: valid ones kept, others mapped to stable, valid, distinct names', async (t) => {
  for (const ok of ['abc', 'checkpoints', 'a-b-c', '123', 'a'.repeat(63)]) t.equal(upstreamContainerName(ok), ok)
  t.equal(upstreamContainerName('my.bucket'), 'my-bucket-cf4a0931')
  t.equal(upstreamContainerName('train--usw2-az1--x-s3'), 'train-usw2-az1-x-s3-829f817c')
  const tricky = ['my.bucket', 'my-bucket', 'my..bucket', 'my.bucket.', 'My.Bucket', 'ab', 'a', '-ab', 'ab-', 'a--b', 'a---b', 'a.-b',
    'x'.repeat(64), 'x'.repeat(63) + '.', 'x'.repeat(200), '...', '', '名前', 'b--usw2-az1--x-s3', 'b--use1-az4--x-s3', 'B', 'b']
  const mapped = new Map<string, string>()
  for (const name of tricky) {
    const up = upstreamContainerName(name)
    t.ok(isAzureContainerName(up), `${JSON.stringify(name)} → ${up}`)
    t.equal(upstreamContainerName(name), up, 'stable')
    t.notOk(mapped.has(up), `${JSON.stringify(name)} and ${JSON.stringify(mapped.get(up))} share ${up}`)
    mapped.set(up, name)
  }
})

t.test('listSources without discovery: identity one source, round-robin its prefixes plus the names as they are', async (t) => {
  t.same(await createLayout('identity', {}).listSources('my.bucket', 'ckpt/'), [{ container: 'my-bucket-cf4a0931', blob: 'ckpt/', root: '' }])
  const rr = await createLayout('round-robin:a,b,a', { upstreamContainer: 'shared' }).listSources('c1', 'x/')
  t.same(rr.map((s) => [s.container, s.blob, s.root]), [['shared', 'c1/x/', 'c1/'], ['shared', 'c1/a/x/', 'c1/a/'], ['shared', 'c1/b/x/', 'c1/b/']])
  // The unprefixed source judges its common prefixes: a prefix segment holds no unprefixed name.
  const holds = rr[0]?.holds
  t.equal(holds?.('a/'), 'no')
  t.equal(holds?.('ab/'), 'yes')
  t.equal(holds?.('a'), 'verify')
  t.equal(holds?.('z-'), 'yes')
  await t.rejects(createLayout('binary', {}).listSources('c1', ''), { code: 'CC_ERR_INTERNAL' })
})

t.test('bad specs are refused', async (t) => {
  for (const spec of ['nope', 'identity:1', 'hash:0', 'hash:9', 'binary:33', 'hex:x', 'round-robin', 'round-robin:', 'round-robin:a,..', 'round-robin:a/b']) {
    t.throws(() => createLayout(spec, {}), spec)
  }
})

/** The example of docs/layouts.md, rendered from the code. */
function renderExample (): string {
  const specs = ['identity', 'hash', 'round-robin:a,b,c', 'binary', 'hex']
  const layouts = specs.map((s) => createLayout(s, {}))
  const row = (cells: string[]): string => `| ${cells.join(' | ')} |`
  const lines = [
    row(['logical name', ...layouts.map((l) => `\`${l.description}\``)]),
    row(['---', ...layouts.map(() => '---')]),
    ...dcp.map((n) => row([`\`${n}\``, ...layouts.map((l) => `\`${l.toUpstream('checkpoints', n).blob}\``)])),
    '',
    'The directory hash of `hash:2` for the next checkpoints of the same run:',
    '',
    row(['directory', '`hash:2` prefix']),
    row(['---', '---']),
    ...[100, 200, 300, 400, 500].map((s) => row([`\`ckpt/step-${s}\``, `\`${(layouts[1]?.toUpstream('checkpoints', `ckpt/step-${s}/.metadata`).blob ?? '').slice(0, 2)}\``])),
    '',
    'Local containers and their upstream containers (without `--upstream-container`):',
    '',
    row(['local container', 'upstream container']),
    row(['---', '---']),
    ...['checkpoints', 'my.bucket', 'train--usw2-az1--x-s3'].map((c) => row([`\`${c}\``, `\`${upstreamContainerName(c)}\``])),
  ]
  return lines.join('\n')
}

t.test('docs/layouts.md shows what the code does', async (t) => {
  const doc = await readFile(new URL('../../docs/layouts.md', import.meta.url), 'utf8')
  const m = /<!-- example:start -->\n([\s\S]*?)\n<!-- example:end -->/.exec(doc)
  t.ok(m, 'the doc has the generated example block')
  t.equal(m?.[1], renderExample(), 'regenerate the block between the example markers from this test')
})
