/* Reference run of spandsp's DTMF receiver for benches/dtmf_inband.rs.
 * Usage: spandsp_dtmf FILE.raw [TWIST_DB REVERSE_TWIST_DB]
 *        (16-bit native-endian linear PCM, 8 kHz)
 * Feeds 160-sample (20 ms) frames like an RTP stream and prints one line
 * "<samples consumed> <digit>" per digit reported, with spandsp's defaults
 * (dtmf_rx_init: normal twist 8 dB, reverse twist 4 dB, its own threshold),
 * or with the twist limits given, through dtmf_rx_parms. */
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdbool.h>
#include <spandsp/telephony.h>
#include <spandsp/logging.h>
#include <spandsp/complex.h>
#include <spandsp/tone_detect.h>
#include <spandsp/super_tone_rx.h>
#include <spandsp/dtmf.h>

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 4) {
        fprintf(stderr, "usage: %s FILE.raw [TWIST_DB REVERSE_TWIST_DB]\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (f == NULL) {
        perror(argv[1]);
        return 2;
    }
    dtmf_rx_state_t *s = dtmf_rx_init(NULL, NULL, NULL);
    if (argc == 4)
        dtmf_rx_parms(s, -1, atoi(argv[2]), atoi(argv[3]), -99);
    int16_t buf[160];
    char digits[MAX_DTMF_DIGITS + 1];
    long long pos = 0;
    size_t n;
    while ((n = fread(buf, sizeof(int16_t), 160, f)) > 0) {
        dtmf_rx(s, buf, (int) n);
        pos += (long long) n;
        size_t k = dtmf_rx_get(s, digits, MAX_DTMF_DIGITS);
        for (size_t i = 0; i < k; i++)
            printf("%lld %c\n", pos, digits[i]);
    }
    dtmf_rx_free(s);
    fclose(f);
    return 0;
}
