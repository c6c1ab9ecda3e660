/*
 * C baseline for `npm run bench`: the same work fdpass does, with nothing in between.
 *   baseline sync N        one process: sendmsg(1 byte + 1 fd) + recvmsg + close, N times
 *   baseline cross N       parent sends N one-fd messages to a forked child that receives and closes
 * Prints nanoseconds per operation; cross also prints the CPU time per fd of the parent and of
 * the child (user + system).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double cpu_ns(int who) {
  struct rusage u;
  getrusage(who, &u);
  return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e9 + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e3;
}

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

static int send_fd(int sock, int fd) {
  char byte = 'x';
  struct iovec iov = { &byte, 1 };
  union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
  struct msghdr m = { 0 };
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = u.buf;
  m.msg_controllen = sizeof u.buf;
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
  return sendmsg(sock, &m, MSG_NOSIGNAL) == 1 ? 0 : -1;
}

/* Receive with the same buffer sizes fdpass uses (64 KiB data, room for 253 fds). */
static int recv_fd(int sock) {
  static char data[65536];
  static union { char buf[1064]; struct cmsghdr align; } u;
  struct iovec iov = { data, sizeof data };
  struct msghdr m = { 0 };
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = u.buf;
  m.msg_controllen = sizeof u.buf;
  ssize_t n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
  if (n <= 0) return -1;
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  if (!c || c->cmsg_type != SCM_RIGHTS) return -1;
  int fd;
  memcpy(&fd, CMSG_DATA(c), sizeof fd);
  return fd;
}

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  long n = atol(argv[2]);
  int file = open("/dev/null", O_RDONLY | O_CLOEXEC);
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) return 1;
  if (strcmp(argv[1], "sync") == 0) {
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
      if (send_fd(sv[0], file) < 0) return 1;
      int fd = recv_fd(sv[1]);
      if (fd < 0) return 1;
      close(fd);
    }
    printf("%.1f\n", (now_ns() - t0) / n);
    return 0;
  }
  double t0 = now_ns();
  double cpu0 = cpu_ns(RUSAGE_SELF);
  pid_t child = fork();
  if (child == 0) {
    close(sv[0]);
    for (long i = 0; i < n; i++) {
      int fd = recv_fd(sv[1]);
      if (fd < 0) _exit(1);
      close(fd);
    }
    _exit(0);
  }
  close(sv[1]);
  for (long i = 0; i < n; i++)
    if (send_fd(sv[0], file) < 0) return 1;
  int status;
  waitpid(child, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 1;
  double wall = now_ns() - t0;
  printf("%.1f %.1f %.1f\n", wall / n, (cpu_ns(RUSAGE_SELF) - cpu0) / n, cpu_ns(RUSAGE_CHILDREN) / n);
  return 0;
}
