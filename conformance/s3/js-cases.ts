/**
 * Every case of the JS client (@aws-sdk/client-s3 and its lib-storage and presigner), in the order
 * the runner executes them. A feature's cases live in their own file and are added here.
 */
import type { JsCase } from './case.js'
import { jsAuthCases } from './js-auth-cases.js'
import { jsBucketCases } from './js-bucket-cases.js'
import { jsChecksumCases } from './js-checksum-cases.js'
import { jsConditionalCases } from './js-conditional-cases.js'
import { jsCopyCases } from './js-copy-cases.js'
import { jsDeleteCases } from './js-delete-cases.js'
import { jsExpressCases } from './js-express-cases.js'
import { jsListingCases } from './js-listing-cases.js'
import { jsMultipartCases } from './js-multipart-cases.js'
import { jsObjectCases } from './js-object-cases.js'

export const jsCases: readonly JsCase[] = [
  ...jsBucketCases,
  ...jsObjectCases,
  ...jsConditionalCases,
  ...jsCopyCases,
  ...jsListingCases,
  ...jsDeleteCases,
  ...jsMultipartCases,
  ...jsChecksumCases,
  ...jsAuthCases,
  ...jsExpressCases,
]
