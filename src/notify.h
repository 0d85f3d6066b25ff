/*
 * notify.h - the systemd notification protocol spoken directly: one
 * datagram to $NOTIFY_SOCKET ("READY=1", "RELOADING=1", "STOPPING=1",
 * "STATUS=..."). No libsystemd needed; a no-op outside systemd.
 */
#ifndef MQGATE_NOTIFY_H
#define MQGATE_NOTIFY_H

/* Sends state (e.g. "READY=1\nSTATUS=running"). 0, or -errno; 0 when
 * there is no NOTIFY_SOCKET. */
int notify_send(const char *state);

#endif
