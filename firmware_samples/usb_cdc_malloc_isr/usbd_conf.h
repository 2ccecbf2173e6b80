/* Board glue of the USB device library. As generated for an RTOS project, USBD_malloc and
 * USBD_free go to the C heap. */
#ifndef USBD_CONF_H
#define USBD_CONF_H
#include <stddef.h>

void *USBD_malloc(size_t size);
void USBD_free(void *p);

#endif
