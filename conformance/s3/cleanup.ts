/**
 * Removes what a run made: every bucket whose name starts with the run id, after aborting its
 * open multipart uploads and deleting its objects (S3 refuses to delete a bucket that is not empty).
 */
import {
  AbortMultipartUploadCommand, DeleteBucketCommand, DeleteObjectCommand, ListBucketsCommand, ListMultipartUploadsCommand,
  paginateListObjectsV2, type S3Client,
} from '@aws-sdk/client-s3'

/** The names of the buckets that start with `runId`. */
export async function runBuckets(s3: S3Client, runId: string): Promise<string[]> {
  const { Buckets } = await s3.send(new ListBucketsCommand({}))
  return (Buckets ?? []).map((b) => b.Name ?? '').filter((n) => n.startsWith(runId))
}

/** Empties and deletes every bucket of the run; returns the names it deleted. */
export async function deleteRunBuckets(s3: S3Client, runId: string): Promise<string[]> {
  const names = await runBuckets(s3, runId)
  for (const bucket of names) await emptyAndDeleteBucket(s3, bucket)
  return names
}

/**
 * Aborts the bucket's open multipart uploads, deletes its objects, then the bucket. Works for
 * general purpose and directory buckets alike, given a client that can reach the bucket.
 */
export async function emptyAndDeleteBucket(s3: S3Client, bucket: string): Promise<void> {
  for (let round = 0; round < 10; round++) {
    const { Uploads } = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }))
    if (!Uploads?.length) break
    for (const u of Uploads) await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }))
  }
  const keys: string[] = []
  for await (const page of paginateListObjectsV2({ client: s3 }, { Bucket: bucket })) {
    for (const c of page.Contents ?? []) keys.push(c.Key ?? '')
  }
  // One DeleteObject per key: cleanup must not depend on DeleteObjects, which is under test.
  for (let i = 0; i < keys.length; i += 8) {
    await Promise.all(keys.slice(i, i + 8).map((Key) => s3.send(new DeleteObjectCommand({ Bucket: bucket, Key }))))
  }
  await s3.send(new DeleteBucketCommand({ Bucket: bucket }))
}
