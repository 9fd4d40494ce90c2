/*
 * A stuck stderr, for tests of "debug output never blocks" (issue 7,
 * defect 6): fd 2 pointed at a pipe that is already full and that nobody
 * reads, so that any write(2) to stderr blocks.
 *
 * While stderr is jammed, a test must not print (no failed assertion
 * either: plain_criterion.h reports on stderr): record results, unjam,
 * then assert.
 */
#ifndef FP_JAM_H
#define FP_JAM_H

struct tu_jam {
	int saved; /* the real stderr */
	int rd;    /* the pipe's read end */
};

/* Jam fd 2 (its write end is blocking, as a terminal or log pipe would be).
 * Aborts on failure. */
void tu_jam_stderr(struct tu_jam *j);

/* Read from the pipe until nothing came for 100 ms (at most 5 s), so that
 * writers blocked on it go on (what they wrote is discarded), then put the
 * real stderr back on fd 2 and close the pipe. */
void tu_unjam_stderr(struct tu_jam *j);

#endif
