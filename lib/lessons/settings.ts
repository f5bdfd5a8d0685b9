/** How big a lesson's experiments are: CI's smoke test, a laptop's quick run, or the course's full runs. */
export const LESSON_SETTINGS = ['smoke', 'quick', 'full'] as const;
export type LessonSetting = (typeof LESSON_SETTINGS)[number];

export const LESSON_SETTING_ENV = 'FASHION_MNIST_LESSON_SETTING';

export class LessonSettingError extends Error {
  override name = 'LessonSettingError';
}

/** The setting asked for by the environment (`npm run lessons -- --smoke` sets it), quick by default. */
export function lessonSetting(env: Record<string, string | undefined> = process.env): LessonSetting {
  const value = env[LESSON_SETTING_ENV] ?? 'quick';
  if (!(LESSON_SETTINGS as readonly string[]).includes(value)) {
    throw new LessonSettingError(`${LESSON_SETTING_ENV} must be one of ${LESSON_SETTINGS.join(', ')} (got '${value}')`);
  }
  return value as LessonSetting;
}

/** The entry of a per-setting table for the current setting. */
export function pick<T>(table: Record<LessonSetting, T>, setting: LessonSetting = lessonSetting()): T {
  return table[setting];
}
