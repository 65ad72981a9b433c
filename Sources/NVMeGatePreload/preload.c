/* Placeholder until the preload library lands (issue 9). */
