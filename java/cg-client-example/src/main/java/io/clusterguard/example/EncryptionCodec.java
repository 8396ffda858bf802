package io.clusterguard.example;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.protobuf.ByteString;
import io.temporal.api.common.v1.Payload;
import io.temporal.payload.codec.PayloadCodec;
import io.temporal.payload.codec.PayloadCodecException;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * clusterguard's payload encryption (src/client/codec.ts, docs/operations.md): AES-256-GCM, the
 * key id as additional authenticated data and in the metadata {@code encryption-key-id}, data =
 * IV (12 bytes) + ciphertext + tag (16 bytes), plaintext = JSON {"m": {key: base64}, "d": base64}.
 */
public final class EncryptionCodec implements PayloadCodec {
  static final String ENCODING = "binary/encrypted";
  static final String KEY_ID = "encryption-key-id";
  private static final int IV_BYTES = 12;
  private static final ObjectMapper JSON = new ObjectMapper();
  private final SecureRandom random = new SecureRandom();
  private final Map<String, byte[]> keys;
  private final String current;

  EncryptionCodec(Map<String, byte[]> keys, String current) {
    if (!keys.containsKey(current)) {
      throw new IllegalArgumentException("the current key " + current + " is not in the ring");
    }
    this.keys = keys;
    this.current = current;
  }

  /** The ring as the agents take it: CG_CODEC__KEYS=id=base64,id=base64 and CG_CODEC__CURRENT. */
  static EncryptionCodec fromEnvironment(String list, String current) {
    Map<String, byte[]> keys = new HashMap<>();
    for (String item : list.split(",")) {
      String entry = item.trim();
      int at = entry.indexOf('=');
      if (at <= 0) throw new IllegalArgumentException("keys must be listed as <id>=<base64>,…");
      keys.put(entry.substring(0, at), Base64.getDecoder().decode(entry.substring(at + 1)));
    }
    return new EncryptionCodec(keys, current);
  }

  @Override
  public List<Payload> encode(List<Payload> payloads) {
    return payloads.stream().map(this::seal).collect(Collectors.toList());
  }

  @Override
  public List<Payload> decode(List<Payload> payloads) {
    return payloads.stream().map(this::open).collect(Collectors.toList());
  }

  private Payload seal(Payload payload) {
    try {
      Map<String, String> m = new LinkedHashMap<>();
      payload.getMetadataMap().forEach((k, v) -> m.put(k, b64(v.toByteArray())));
      byte[] plain =
          JSON.writeValueAsBytes(Map.of("m", m, "d", b64(payload.getData().toByteArray())));
      byte[] iv = new byte[IV_BYTES];
      random.nextBytes(iv);
      byte[] sealed = cipher(Cipher.ENCRYPT_MODE, current, iv).doFinal(plain);
      return Payload.newBuilder()
          .putMetadata("encoding", utf8(ENCODING))
          .putMetadata(KEY_ID, utf8(current))
          .setData(ByteString.copyFrom(iv).concat(ByteString.copyFrom(sealed)))
          .build();
    } catch (Exception e) {
      throw new PayloadCodecException(e);
    }
  }

  private Payload open(Payload payload) {
    ByteString encoding = payload.getMetadataOrDefault("encoding", ByteString.EMPTY);
    if (!ENCODING.equals(encoding.toStringUtf8())) return payload;
    String id = payload.getMetadataOrDefault(KEY_ID, ByteString.EMPTY).toStringUtf8();
    if (!keys.containsKey(id)) {
      throw new PayloadCodecException("a payload is encrypted with key " + id + ", not in the ring");
    }
    try {
      byte[] data = payload.getData().toByteArray();
      byte[] iv = java.util.Arrays.copyOfRange(data, 0, IV_BYTES);
      byte[] plain = cipher(Cipher.DECRYPT_MODE, id, iv).doFinal(data, IV_BYTES, data.length - IV_BYTES);
      Map<?, ?> json = JSON.readValue(plain, Map.class);
      Payload.Builder out = Payload.newBuilder();
      ((Map<?, ?>) json.get("m"))
          .forEach((k, v) -> out.putMetadata((String) k, ByteString.copyFrom(unb64((String) v))));
      return out.setData(ByteString.copyFrom(unb64((String) json.get("d")))).build();
    } catch (Exception e) {
      throw new PayloadCodecException(e);
    }
  }

  private Cipher cipher(int mode, String id, byte[] iv) throws GeneralSecurityException {
    Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
    c.init(mode, new SecretKeySpec(keys.get(id), "AES"), new GCMParameterSpec(128, iv));
    c.updateAAD(id.getBytes(StandardCharsets.UTF_8));
    return c;
  }

  private static ByteString utf8(String s) {
    return ByteString.copyFromUtf8(s);
  }

  private static String b64(byte[] bytes) {
    return Base64.getEncoder().encodeToString(bytes);
  }

  private static byte[] unb64(String text) {
    return Base64.getDecoder().decode(text);
  }
}
