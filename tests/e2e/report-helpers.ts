/** Opening an exported report the way a reader would, offline: every request but the file itself is aborted and counted. */
import { pathToFileURL } from 'node:url';
import { expect, type BrowserContext, type Page } from '@playwright/test';

export interface OfflineReport { page: Page; blocked: string[] }

/** Opens `file` in a new page of `context` with the network blocked (only file:// of the report itself is let through). */
export async function openReportOffline(context: BrowserContext, file: string): Promise<OfflineReport> {
  const page = await context.newPage();
  const blocked: string[] = [];
  const url = pathToFileURL(file).href;
  await page.route('**', async (route) => {
    const u = route.request().url();
    if (u === url) return route.continue();
    blocked.push(u);
    return route.abort();
  });
  await page.goto(url);
  return { page, blocked };
}

/** The report rendered: its title, the metrics table, and inline SVG charts with drawn bars. */
export async function expectReportRendered(report: OfflineReport, title: RegExp | string): Promise<void> {
  const { page, blocked } = report;
  await expect(page.locator('h1')).toHaveText(title);
  await expect(page.locator('table').first()).toBeVisible();
  const charts = page.locator('svg.chart');
  expect(await charts.count()).toBeGreaterThan(0);
  await expect(charts.first()).toBeVisible();
  const box = await charts.first().boundingBox();
  expect(box && box.width > 200 && box.height > 50).toBe(true);
  // Bars have a drawn size (the stylesheet and the SVG both applied).
  const bar = await page.locator('svg.chart rect.bar').first().boundingBox();
  expect(bar && bar.width > 0 && bar.height > 0).toBe(true);
  expect(await page.locator('script').count()).toBe(0);
  expect(blocked).toEqual([]);
}
