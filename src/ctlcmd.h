/* ctlcmd.h - the commands of the control socket. */
#ifndef PGT_CTLCMD_H
#define PGT_CTLCMD_H

#include "ctl.h"

/* ctl_handler_fn for the daemon; arg is the struct daemon. */
void ctlcmd_handle(struct ctl_client *client, const struct ctl_request *req,
		   void *arg);

#endif
