/** RFC 3339 in UTC to the second ("2024-05-01T12:00:00Z"), as Kubernetes writes metav1.Time. */
export function rfc3339(epochMs: number): string {
  return new Date(epochMs).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
