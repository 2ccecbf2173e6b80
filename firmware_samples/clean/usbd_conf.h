/* Board glue of the USB device library. The class state comes from a static pool, as ST's later
 * USB libraries do with USBD_static_malloc: nothing in the USB interrupt touches the heap. */
#ifndef USBD_CONF_H
#define USBD_CONF_H
#include <stddef.h>

void *USBD_static_malloc(size_t size);
void USBD_static_free(void *p);
#define USBD_malloc(size) USBD_static_malloc(size)
#define USBD_free(p) USBD_static_free(p)

#endif
