/** Multipart block ids: every field round-trips, and they are valid, equal-length Azure block ids. */
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { S3_CHECKSUM_LENGTH, type S3ChecksumAlgorithm } from '../../../src/core/checksum/s3-checksums.js'
import { isUploadId, newUploadId, parseBlockId, partBlockId, recordBlockId, uploadChecksum } from '../../../src/frontends/s3/multipart-ids.js'

t.test('upload ids carry the upload\'s checksum algorithm and type', async (t) => {
  t.equal(uploadChecksum(newUploadId(undefined)), undefined)
  for (const algorithm of ['crc32', 'crc32c', 'crc64nvme', 'sha1', 'sha256'] as const) {
    for (const type of ['COMPOSITE', 'FULL_OBJECT'] as const) {
      const id = newUploadId({ algorithm, type })
      t.ok(isUploadId(id), id)
      t.same(uploadChecksum(id), { algorithm, type })
    }
  }
  t.notOk(isUploadId('short'))
  t.notOk(isUploadId('AAAAAAAAAAAAAAA/'), 'not base64url')
  t.notOk(isUploadId(Buffer.alloc(12, 0x7f).toString('base64url')), 'an unknown algorithm code')
})

t.test('block ids: 64 bytes, record and parts round-trip', async (t) => {
  const algorithms: Array<S3ChecksumAlgorithm | undefined> = [undefined, 'crc32', 'crc32c', 'crc64nvme', 'sha1', 'sha256']
  for (const algorithm of algorithms) {
    const uploadId = newUploadId(algorithm === undefined ? undefined : { algorithm, type: 'COMPOSITE' })
    const record = recordBlockId(uploadId)
    t.equal(Buffer.from(record, 'base64').length, 64, 'the longest Azure block id')
    t.same(parseBlockId(record), { uploadId, part: 0 })
    for (const part of [1, 2, 9999, 10000]) {
      const md5 = randomBytes(16)
      const checksum = algorithm === undefined ? undefined : { algorithm, value: randomBytes(S3_CHECKSUM_LENGTH[algorithm]) }
      const id = partBlockId(uploadId, part, md5, checksum)
      t.equal(id.length, record.length, 'all ids of an object have one length')
      t.same(parseBlockId(id), { uploadId, part, md5: md5.toString('hex'), ...(checksum === undefined ? {} : { checksum }) })
    }
  }
  const tooLong = partBlockId(newUploadId(undefined), 1, randomBytes(16), { algorithm: 'sha512', value: randomBytes(64) })
  t.same(Object.keys(parseBlockId(tooLong)!).sort(), ['md5', 'part', 'uploadId'], 'a checksum that does not fit is not kept')
  t.equal(parseBlockId(Buffer.from('azure-client-block-0001').toString('base64')), undefined, 'another client\'s block')
  t.equal(parseBlockId(Buffer.alloc(64).toString('base64')), undefined, 'not our mark')
})
