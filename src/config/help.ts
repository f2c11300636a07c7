/**
 * `ckptcache --help`, rendered from the settings table. The README copies
 * this text, so it stays within 80 columns.
 */

import { CONFIG_ENV, SETTINGS, envName } from './settings.js'

export function helpText (version: string): string {
  const lines = [
    `ckptcache ${version}: caching gateway for ML training checkpoints.`,
    'Serves the Azure Blob REST and S3 APIs from local NVMe, one namespace.',
    '',
    'Usage:',
    '  ckptcache [serve] [options]   start the gateway (serve is the default)',
    '  ckptcache flush [--prefix CONTAINER[/PREFIX]] [--wait] [--admin URL]',
    '                                upload what is dirty (under the prefix) to',
    '                                Azure Blob; --wait follows it to the end,',
    '                                else exit 3 while it is still going',
    '  ckptcache drain [--wait] [--admin URL]',
    '                                hand what only this node holds (dirty',
    '                                objects, sole copies) to its peers before',
    '                                maintenance; --wait follows it to the end,',
    '                                else exit 3 while it is still going',
    '  ckptcache status [--json] [--admin URL]',
    '                                writeback queue, store and cluster of a',
    '                                running node',
    '                                (--admin URL: its admin API, by default',
    `                                http://127.0.0.1:${'$'}${envName('admin-port')},`,
    '                                else port 10100; drain and status also',
    '                                take --admin-port PORT)',
    '  ckptcache help | --help       show this help',
    '  ckptcache --version           print the version',
    '',
    'Options (each with its environment variable and config-file key):',
    '',
    '  --config FILE',
    `      env ${CONFIG_ENV}`,
    '      JSON config file: an object with any of the config-file keys below.',
    '      Default: none',
  ]
  for (const s of SETTINGS) {
    lines.push('')
    if (s.flag === undefined) {
      lines.push(`  (config file only) ${s.key}`)
    } else {
      const where = `      env ${envName(s.flag)}, file key ${s.key}`
      lines.push(`  --${s.flag} ${s.arg ?? ''}`.trimEnd(), ...(where.length <= 80 ? [where] : [`      env ${envName(s.flag)},`, `      file key ${s.key}`]))
    }
    for (const line of s.help) lines.push(`      ${line}`)
    lines.push(`      Default: ${s.defaultText}`)
  }
  lines.push(
    '',
    'Precedence, lowest first: defaults, config file, CKPTCACHE_* environment',
    'variables, flags. Flags take --flag value or --flag=value. Empty environment',
    'variables are ignored. Unknown flags and unknown config-file keys are',
    'errors. Relative paths resolve against the current directory, or in a',
    'config file against the file\'s directory. In the config file a number means',
    'bytes (capacity) or milliseconds (stagedBlockMaxAgeMs); a string takes the',
    'same forms as the flag; peerReadCache may be true or false, and peers and',
    'markerPatterns an array of strings.',
    '',
    'Sizes: a whole number of bytes, or a number and a unit. Units with an "i"',
    'are powers of 1024: Ki Mi Gi Ti Pi, with or without B (KiB ... PiB). All',
    'other units are powers of 1000: K M G T P, with or without B (KB ... PB).',
    'Units are case-insensitive. 500G and 500GB are 500,000,000,000 bytes;',
    '1.5TiB is 1,649,267,441,664 bytes.',
    '',
    'Durations: a number and a unit (ms, s, m for minutes, h, d), or a bare',
    'number of milliseconds: 7d, 12h, 30m, 45s, 1.5h, 250ms, 60000.',
    '',
    'Security: the default account key is the storage emulator key, which is',
    'public. ckptcache refuses to start with it unless --host is a loopback',
    'address (127.0.0.0/8, ::1, localhost). Before binding any other address set',
    `--account-key or ${envName('account-key')} to a secret, e.g. the output of`,
    '`openssl rand -base64 32`. The same holds for the default S3 secret: set',
    `--s3-secret-key or ${envName('s3-secret-key')} before binding another address.`,
    '',
    'Cluster: a node with --peers, --peers-file or --peers-dns (exactly one)',
    'cooperates with the others over its peer API and needs the cluster secret',
    '(--cluster-secret-file or --cluster-secret), the same on every node. See',
    'docs/cluster.md.',
    '',
    'Signals: SIGTERM or SIGINT stops accepting connections, finishes requests in',
    'flight and exits; a second signal exits at once with status 1.',
    '',
    'Exit status: 0 stopped cleanly, 1 failed to start or to stop,',
    '2 invalid configuration.',
  )
  return lines.join('\n') + '\n'
}
