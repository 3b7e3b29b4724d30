export const GENERATED_FILE: string;
export function fetchOpenApiDocument(): Promise<Record<string, unknown>>;
export function renderOpenApiTypes(document: Record<string, unknown>): Promise<string>;
export function generateOpenApiTypes(): Promise<string>;
