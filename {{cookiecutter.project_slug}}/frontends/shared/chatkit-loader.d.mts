export declare const CHATKIT_SCRIPT_URL: string;
export declare const SCRIPT_FAILED_FLAG: string;
export declare const SCRIPT_FAILED_EVENT: string;
/** The inline script, for a <script> in the document head before the ChatKit script tag. */
export declare const CHATKIT_LOADER: string;
/** CHATKIT_LOADER's CSP source: "'sha256-...'". */
export declare const LOADER_HASH: string;
