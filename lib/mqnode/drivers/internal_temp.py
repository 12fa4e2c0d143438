"""The chip's own temperature sensor: RP2040 ADC channel 4 (also what the simulated board has).

ESP32 classic has no usable one in MicroPython; S3/C3 expose `esp32.mcu_temperature()`.
"""


class InternalTemp:
    component = "sensor"

    def __init__(self, spec, hw):
        self.fields = [(spec["name"], "°C", "temperature")]
        self._adc = hw.ADC(spec.get("adc", 4)) if hw.CHIP in ("rp2040", "sim") else None

    async def read(self):
        if self._adc is None:
            import esp32  # S3/C3 have mcu_temperature(); the classic ESP32 does not

            if not hasattr(esp32, "mcu_temperature"):
                raise OSError("this chip has no internal temperature sensor")
            return [round(esp32.mcu_temperature(), 2)]
        volts = self._adc.read_u16() * 3.3 / 65535
        return [round(27 - (volts - 0.706) / 0.001721, 2)]  # RP2040 datasheet, section 4.9.5


make = InternalTemp  # made straight from its board-file entry: one function less to keep in RAM
