/**
 * The build-time settings, read the Vite way: `vite build` inlines each
 * `import.meta.env.VITE_*` named below into the browser bundle; no other variable
 * reaches the browser. The rest of src/ reads them only through this module.
 */

/** The variable that takes the domain key (named in the messages shown to users). */
export const DOMAIN_KEY_VARIABLE = "VITE_CHATKIT_DOMAIN_KEY";

/** Where the browser sends ChatKit requests; unset means /chatkit. */
export const CONFIGURED_API_URL: string | undefined = import.meta.env.VITE_CHATKIT_API_URL;

/** The domain key; unset means the local-development value, on local hosts only. */
export const CONFIGURED_DOMAIN_KEY: string | undefined = import.meta.env.VITE_CHATKIT_DOMAIN_KEY;
