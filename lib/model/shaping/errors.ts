// One malformed or out-of-range annotation value, worded for a Warning Event: which annotation,
// the offending token exactly as written, where it is, and the form that would have been accepted.

export interface AnnotationError {
  annotation: string;
  /** The offending token as written (the keyword itself when its value is missing). */
  token: string;
  /** 1-based column of the token in the annotation's value; null when the value is one token. */
  column: number | null;
  message: string;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; errors: AnnotationError[] };

/** A token quoted the way the messages quote it: JSON string syntax, so odd characters stay visible. */
export function quote(text: string): string {
  return JSON.stringify(text);
}

export function annotationError(annotation: string, token: string, column: number | null, detail: string): AnnotationError {
  return { annotation, token, column, message: `${annotation}: ${detail}` };
}
