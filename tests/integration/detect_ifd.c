/* SPDX-License-Identifier: Apache-2.0 */
/*
 * detect_ifd.c - a do-nothing PC/SC reader driver (IFD handler 3.0) for detect_pcsc.sh.
 *
 * pcsc-lite 1.9.9 adds readers at run time only through USB hotplug (libudev): pcscd matches
 * the device's vendor/product id against the drivers' Info.plist bundles and loads the
 * driver. The test gives pcscd a private bundle directory holding this driver for a fake USB
 * device from a umockdev testbed, so a reader appears and disappears while the detect driver
 * waits on "\\?PnP?\Notification". The reader never has a card in it.
 */
#include <PCSC/ifdhandler.h>

/* Exported: the names pcscd looks up with dlsym. */
RESPONSECODE IFDHCreateChannelByName(DWORD Lun, LPSTR DeviceName)
{
    (void)Lun;
    (void)DeviceName;
    return IFD_SUCCESS;
}

RESPONSECODE IFDHCreateChannel(DWORD Lun, DWORD Channel)
{
    (void)Lun;
    (void)Channel;
    return IFD_SUCCESS;
}

RESPONSECODE IFDHCloseChannel(DWORD Lun)
{
    (void)Lun;
    return IFD_SUCCESS;
}

RESPONSECODE IFDHGetCapabilities(DWORD Lun, DWORD Tag, PDWORD Length, PUCHAR Value)
{
    (void)Lun;
    switch (Tag) {
    case TAG_IFD_SLOTS_NUMBER:
    case TAG_IFD_SIMULTANEOUS_ACCESS:
        if (*Length < 1)
            return IFD_ERROR_INSUFFICIENT_BUFFER;
        *Length = 1;
        Value[0] = 1;
        return IFD_SUCCESS;
    case TAG_IFD_THREAD_SAFE:
    case TAG_IFD_SLOT_THREAD_SAFE:
        if (*Length < 1)
            return IFD_ERROR_INSUFFICIENT_BUFFER;
        *Length = 1;
        Value[0] = 0;
        return IFD_SUCCESS;
    default:
        return IFD_ERROR_TAG;
    }
}

RESPONSECODE IFDHSetCapabilities(DWORD Lun, DWORD Tag, DWORD Length, PUCHAR Value)
{
    (void)Lun;
    (void)Tag;
    (void)Length;
    (void)Value;
    return IFD_ERROR_TAG;
}

RESPONSECODE IFDHSetProtocolParameters(DWORD Lun, DWORD Protocol, UCHAR Flags, UCHAR PTS1,
                                       UCHAR PTS2, UCHAR PTS3)
{
    (void)Lun;
    (void)Protocol;
    (void)Flags;
    (void)PTS1;
    (void)PTS2;
    (void)PTS3;
    return IFD_PROTOCOL_NOT_SUPPORTED;
}

RESPONSECODE IFDHPowerICC(DWORD Lun, DWORD Action, PUCHAR Atr, PDWORD AtrLength)
{
    (void)Lun;
    (void)Action;
    (void)Atr;
    *AtrLength = 0;
    return IFD_ERROR_POWER_ACTION;
}

RESPONSECODE IFDHTransmitToICC(DWORD Lun, SCARD_IO_HEADER SendPci, PUCHAR TxBuffer, DWORD TxLength,
                               PUCHAR RxBuffer, PDWORD RxLength, PSCARD_IO_HEADER RecvPci)
{
    (void)Lun;
    (void)SendPci;
    (void)TxBuffer;
    (void)TxLength;
    (void)RxBuffer;
    (void)RecvPci;
    *RxLength = 0;
    return IFD_COMMUNICATION_ERROR;
}

RESPONSECODE IFDHControl(DWORD Lun, DWORD dwControlCode, PUCHAR TxBuffer, DWORD TxLength,
                         PUCHAR RxBuffer, DWORD RxLength, LPDWORD pdwBytesReturned)
{
    (void)Lun;
    (void)dwControlCode;
    (void)TxBuffer;
    (void)TxLength;
    (void)RxBuffer;
    (void)RxLength;
    *pdwBytesReturned = 0;
    return IFD_ERROR_NOT_SUPPORTED;
}

RESPONSECODE IFDHICCPresence(DWORD Lun)
{
    (void)Lun;
    return IFD_ICC_NOT_PRESENT;
}
