#ifndef TOKENBROKER_CSYSTEMD_SHIM_H
#define TOKENBROKER_CSYSTEMD_SHIM_H

// libsystemd, for sd_notify, socket activation and native journal entries.
// sd_journal_send is variadic and cannot be called from Swift: SystemdSupport calls
// sd_journal_sendv with an iovec array and adds CODE_FILE/CODE_LINE/CODE_FUNC itself, so the
// location macros are switched off here.
#define SD_JOURNAL_SUPPRESS_LOCATION 1
#include <sys/uio.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

#endif
