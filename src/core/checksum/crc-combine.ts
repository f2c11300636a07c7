/**
 * CRC of a concatenation from the CRCs of its pieces: crc(A‖B) from crc(A), crc(B) and len(B),
 * without the bytes of A — zlib's `crc32_combine`, generalised to the reflected CRCs S3 uses
 * (CRC-32, CRC-32C, CRC-64/NVME; CRC-64/NVME is also Azure's `x-ms-content-crc64`).
 *
 * Why it works: a CRC is affine in its input. Write crc(M) = L(M) ⊕ c(|M|), with L linear
 * (register from 0, no final xor) and c the effect of the initial value and the final xor. Then
 * L(A‖B) = x^(8|B|)·L(A) ⊕ L(B) modulo the polynomial, and when the initial value equals the final
 * xor (all-ones for all three here) the constant terms cancel:
 *
 *     crc(A‖B) = x^(8|B|)·crc(A) ⊕ crc(B)        (mod p)
 *
 * x^(8n) mod p is built from a table of x^(2^k) mod p by square-and-multiply, so a combine costs
 * O(log n) polynomial multiplications whatever the lengths (tens of µs), not a pass over n zero
 * bytes. Values are BigInt in the reflected bit order the registers use (bit width−1 is x^0),
 * which is also the value the checksums' big-endian bytes encode.
 */

export type CombinableCrc = 'crc32' | 'crc32c' | 'crc64nvme'

export const COMBINABLE_CRCS: readonly CombinableCrc[] = ['crc32', 'crc32c', 'crc64nvme']

interface CrcSpec {
  /** Register width in bits. */
  width: number
  /** The polynomial, reflected. */
  poly: bigint
}

const SPECS: Readonly<Record<CombinableCrc, CrcSpec>> = {
  crc32: { width: 32, poly: 0xEDB88320n },
  crc32c: { width: 32, poly: 0x82F63B78n },
  crc64nvme: { width: 64, poly: 0x9A6C9329AC4BC9B5n }
}

export function isCombinableCrc (algorithm: string): algorithm is CombinableCrc {
  return (COMBINABLE_CRCS as readonly string[]).includes(algorithm)
}

/** a(x)·b(x) mod p(x), both reflected. `a` must not be 0 (it never is: it is a power of x). */
function multModP (spec: CrcSpec, a: bigint, b: bigint): bigint {
  let m = 1n << BigInt(spec.width - 1)
  let p = 0n
  for (;;) {
    if ((a & m) !== 0n) {
      p ^= b
      if ((a & (m - 1n)) === 0n) return p
    }
    m >>= 1n
    b = (b & 1n) !== 0n ? (b >> 1n) ^ spec.poly : b >> 1n
  }
}

/** x^(2^k) mod p for k = 0…63: enough for any length below 2^60 bytes (8·n < 2^63). */
const POWERS = new Map<CombinableCrc, bigint[]>()

function powers (algorithm: CombinableCrc): bigint[] {
  let table = POWERS.get(algorithm)
  if (table !== undefined) return table
  const spec = SPECS[algorithm]
  table = []
  let p = 1n << BigInt(spec.width - 2) // x^1
  for (let k = 0; k < 64; k++) {
    table.push(p)
    p = multModP(spec, p, p)
  }
  POWERS.set(algorithm, table)
  return table
}

/** x^(8·n) mod p. */
function xPow8n (algorithm: CombinableCrc, n: bigint): bigint {
  const spec = SPECS[algorithm]
  const table = powers(algorithm)
  let p = 1n << BigInt(spec.width - 1) // x^0
  let k = 3 // 8·n = n·2^3
  while (n > 0n) {
    if ((n & 1n) !== 0n) p = multModP(spec, table[k] as bigint, p)
    n >>= 1n
    k++
  }
  return p
}

/** crc(A‖B) from crc(A), crc(B) and the length of B in bytes (register values). */
export function crcCombineValue (algorithm: CombinableCrc, crcA: bigint, crcB: bigint, lengthB: number | bigint): bigint {
  const n = BigInt(lengthB)
  if (n < 0n || n >= 1n << 60n) throw new RangeError(`length out of range: ${n}`)
  if (n === 0n) return crcA
  return multModP(SPECS[algorithm], xPow8n(algorithm, n), crcA) ^ crcB
}

/** The byte length of an algorithm's checksum. */
export function crcBytes (algorithm: CombinableCrc): number {
  return SPECS[algorithm].width / 8
}

function fromBytes (algorithm: CombinableCrc, value: Uint8Array): bigint {
  if (value.length !== crcBytes(algorithm)) throw new RangeError(`${algorithm} checksum must be ${crcBytes(algorithm)} bytes, got ${value.length}`)
  return BigInt('0x' + Buffer.from(value).toString('hex'))
}

function toBytes (algorithm: CombinableCrc, value: bigint): Buffer {
  return Buffer.from(value.toString(16).padStart(crcBytes(algorithm) * 2, '0'), 'hex')
}

/**
 * crc(A‖B) in S3's byte form (big-endian, what `createS3Hasher(algorithm).digest()` gives and
 * what `x-amz-checksum-*` carries in base64).
 */
export function crcCombine (algorithm: CombinableCrc, crcA: Uint8Array, crcB: Uint8Array, lengthB: number | bigint): Buffer {
  return toBytes(algorithm, crcCombineValue(algorithm, fromBytes(algorithm, crcA), fromBytes(algorithm, crcB), lengthB))
}
