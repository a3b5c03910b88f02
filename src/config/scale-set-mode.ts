/** Which way a runner definition learns of its jobs (docs/scale-sets.md, "In the daemon"). */

/** A definition is in scale-set mode by its own `mode`, else by having `scaleSet:`, else by the top-level `mode`. */
export function isScaleSetMode(v: { readonly mode?: 'webhook' | 'scaleset' | null | undefined; readonly scaleSet?: unknown }, defaultMode: 'webhook' | 'scaleset' | null | undefined): boolean {
  if (v.mode != null) return v.mode === 'scaleset';
  if (v.scaleSet != null) return true;
  return defaultMode === 'scaleset';
}
