// What the test-file runners share: run `task` for each item, at most `workers` at a time,
// results in the items' order.
export async function runEach(items, workers, task) {
  const results = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(workers, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(items[index], index);
    }
  }));
  return results;
}
