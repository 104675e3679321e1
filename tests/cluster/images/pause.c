// The test cluster's pod sandbox process (containerd's sandbox_image, built by
// tests/cluster/images.sh): what the upstream pause does. It holds the pod's namespaces by sleeping
// until SIGINT or SIGTERM, then exits 0; as PID 1 of a shared PID namespace it reaps the zombies
// other processes leave behind. Static (gcc -static -Os): the image holds nothing but this binary.
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int signo) {
  // Only async-signal-safe calls in a handler: write and _exit.
  static const char kInt[] = "pause: SIGINT, exiting\n";
  static const char kTerm[] = "pause: SIGTERM, exiting\n";
  if (signo == SIGINT) {
    (void)!write(STDERR_FILENO, kInt, sizeof kInt - 1);
  } else {
    (void)!write(STDERR_FILENO, kTerm, sizeof kTerm - 1);
  }
  _exit(0);
}

static void on_child(int signo) {
  (void)signo;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "-v") == 0) {
      printf("pause (poolkeeper test cluster) 3.10\n");
      return 0;
    }
  }
  if (getpid() != 1) fprintf(stderr, "pause: warning: not PID 1\n");

  struct sigaction stop = {.sa_handler = on_stop};
  sigemptyset(&stop.sa_mask);
  struct sigaction child = {.sa_handler = on_child, .sa_flags = SA_NOCLDSTOP | SA_RESTART};
  sigemptyset(&child.sa_mask);
  if (sigaction(SIGINT, &stop, NULL) < 0) return 1;
  if (sigaction(SIGTERM, &stop, NULL) < 0) return 2;
  if (sigaction(SIGCHLD, &child, NULL) < 0) return 3;

  for (;;) pause();
  return 42;  // not reached
}
