/** Azure container naming rules, which the Blob front end, the configuration and the upstream mapping all apply. */

const AZURE_CONTAINER = /^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/

/** True for a valid Azure container name: 3-63 lowercase letters, digits and single hyphens, alphanumeric at both ends. */
export function isAzureContainerName (name: string): boolean {
  return AZURE_CONTAINER.test(name)
}
