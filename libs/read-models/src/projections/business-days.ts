/** Adds business days (Saturday and Sunday skipped) to an instant, keeping its time of day (UTC). */
export const addBusinessDays = (iso: string, days: number): string => {
  const date = new Date(iso);
  let added = 0;
  while (added < days) {
    date.setUTCDate(date.getUTCDate() + 1);
    const weekday = date.getUTCDay();
    if (weekday !== 0 && weekday !== 6) added++;
  }
  return date.toISOString();
};
