/* hostout.h without a desktop session: every failure is a status and a reason, nothing leaks. */
#include "../hostout.h"
#include "check.h"

#include <string.h>

int main(void) {
    neuron_pw_stream *s = NULL;
    CHECK(neuron_pw_stream_open(NULL, 1, 8, 8, 30, 100, &s) == NEURON_EINVAL);
    CHECK(neuron_pw_stream_open(NULL, 1, 640, 480, 0, 100, &s) == NEURON_EINVAL);
    CHECK(neuron_pw_stream_open("/nonexistent/pipewire-0", 40, 640, 480, 30, 200, &s) == NEURON_EIO && s == NULL);
    CHECK(strlen(neuron_pw_last_error()) > 0);
    neuron_pw_stream_close(NULL);
    neuron_frame_info info;
    CHECK(neuron_pw_stream_next_frame(NULL, 0, NULL, 0, &info) == NEURON_EINVAL);

    neuron_mutter *m = NULL;
    CHECK(neuron_mutter_open("unix:path=/nonexistent/bus", &m) == NEURON_EIO && m == NULL);
    CHECK(neuron_mutter_open(NULL, NULL) == NEURON_EINVAL);
    CHECK(neuron_mutter_available(NULL) == 0);
    CHECK(neuron_mutter_name_has_owner(NULL, "org.gnome.Mutter.ScreenCast") == 0);
    CHECK(neuron_mutter_pointer_absolute(NULL, 1, 1) == NEURON_EINVAL);
    CHECK(neuron_mutter_key(NULL, 30, 1) == NEURON_EINVAL);
    CHECK(neuron_mutter_pointer_relative(NULL, 1, 1) == NEURON_EINVAL);
    CHECK(neuron_mutter_pointer_axis_discrete(NULL, 0, 1) == NEURON_EINVAL);
    CHECK(neuron_mutter_pointer_axis(NULL, 0, 5, 8) == NEURON_EINVAL);
    uint32_t node;
    CHECK(neuron_mutter_record_virtual(NULL, 1, 10, &node) == NEURON_EINVAL);
    CHECK(neuron_mutter_stop(NULL) == NEURON_EINVAL);
    neuron_mutter_close(NULL);
    return check_report("hostout");
}
