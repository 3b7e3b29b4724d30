/** Where `npm run build` writes the generated validators. */
export const OUTPUT: string;
/** The text of that file, generated from the current templates and Ajv. */
export function validatorsModule(): string;
