/* Placeholder until the broker client lands (issue 9). */
