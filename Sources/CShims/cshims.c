/* Header-only: see include/cshims.h. */
