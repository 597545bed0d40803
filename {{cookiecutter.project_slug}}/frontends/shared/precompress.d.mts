/** Writes FILE.gz and FILE.br beside each compressible file under `dir`, where smaller;
 * returns how many it wrote. */
export declare function precompressDir(dir: string): number;
