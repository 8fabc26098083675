/**
 * Draws `count` distinct numbers that are not in use, for identifiers a member hands out itself
 * (addressee numbers, ticket numbers): candidates come from `draw`, those in `exclude` or already
 * drawn are skipped, and `inUse` is asked about each round's candidates at once — one read per
 * round, not one per number.
 */
export async function drawUnusedNumbers(
  count: number, exclude: ReadonlySet<string>, draw: () => string, inUse: (candidates: string[]) => Promise<ReadonlySet<string>>,
): Promise<string[]> {
  const drawn = new Set<string>();
  while (drawn.size < count) {
    const candidates = new Set<string>();
    while (candidates.size < count - drawn.size) {
      const candidate = draw();
      if (!exclude.has(candidate) && !drawn.has(candidate)) candidates.add(candidate);
    }
    const used = await inUse([...candidates]);
    for (const candidate of candidates) if (!used.has(candidate)) drawn.add(candidate);
  }
  return [...drawn];
}
