/** Every case of the JS client (@azure/storage-blob), in the order the runner executes them. */
import type { JsCase } from './case.js'
import { jsAccountCases } from './js-account-cases.js'
import { jsBlocksCopyCases } from './js-blocks-copy-cases.js'
import { jsDataCases } from './js-data-cases.js'
import { jsListingCases } from './js-listing-cases.js'
import { jsPropertiesCases } from './js-properties-cases.js'

export const jsCases: readonly JsCase[] = [
  ...jsDataCases,
  ...jsPropertiesCases,
  ...jsListingCases,
  ...jsBlocksCopyCases,
  ...jsAccountCases,
]
