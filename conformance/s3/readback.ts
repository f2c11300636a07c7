/**
 * Reading back through the JS client what another client wrote, so a command-line case asserts
 * what a user would see: the keys listed, and each object's size, ETag and bytes.
 */
import { GetObjectCommand, paginateListObjectsV2, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { hashStream } from './data.js'

/** Every key under `prefix`, in listing order. */
export async function listKeys(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = []
  for await (const page of paginateListObjectsV2({ client: s3 }, { Bucket: bucket, Prefix: prefix })) {
    for (const c of page.Contents ?? []) keys.push(c.Key ?? '')
  }
  return keys
}

/** Size, ETag and sha256 of an object, read with one streamed GET. */
export async function readObject(s3: S3Client, bucket: string, key: string): Promise<{ size: number, etag: string, sha256: string }> {
  const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
  const { bytes, sha256 } = await hashStream(r.Body as NodeJS.ReadableStream)
  return { size: bytes, etag: r.ETag ?? '', sha256 }
}

/** Writes small objects whose body is their own key. */
export async function putKeys(s3: S3Client, bucket: string, keys: readonly string[]): Promise<void> {
  await Promise.all(keys.map((k) => s3.send(new PutObjectCommand({ Bucket: bucket, Key: k, Body: k }))))
}
