/** Moved to main/engine/rewrite/eligibility.ts (weight eligibility is decided once, from the architecture map). */
export * from '../rewrite/eligibility.ts';
