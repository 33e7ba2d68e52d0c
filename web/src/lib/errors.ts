// The text shown for a failure: an Error's message (ApiError carries the server's), or the value
// itself when something other than an Error was thrown.
export function errorMessage(reason: unknown): string {
  return reason instanceof Error ? reason.message : String(reason);
}
