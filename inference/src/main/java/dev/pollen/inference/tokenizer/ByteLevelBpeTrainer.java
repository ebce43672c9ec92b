package dev.pollen.inference.tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A small, deterministic byte-level BPE trainer (Sennrich et al. 2016, in GPT-2's byte-level form,
 * Radford et al. 2019). It exists so tests and benchmarks can make real tokenizers without
 * downloading one; it is not meant to rival the Rust trainer.
 *
 * <p>Determinism: words are counted in a sorted map, and among pairs with the same count the
 * lexicographically smallest (left symbol, then right symbol) wins, so the merges depend on the
 * sample text and the vocabulary size only.
 */
final class ByteLevelBpeTrainer {

    /**
     * GPT-2's pre-tokenizer regex, the one {@code ByteLevel(use_regex=true)} applies. Java's
     * {@code \s} needs UNICODE_CHARACTER_CLASS to mean Unicode whitespace as in Rust's regex.
     */
    static final Pattern GPT2_SPLIT = Pattern.compile(
            "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
            Pattern.UNICODE_CHARACTER_CLASS);

    /** A merge rule: the two adjacent symbols {@code left} and {@code right} become one. */
    record Merge(String left, String right) {
        static final Comparator<Merge> LEXICOGRAPHIC =
                Comparator.comparing(Merge::left).thenComparing(Merge::right);

        Merge {
            Objects.requireNonNull(left, "left");
            Objects.requireNonNull(right, "right");
        }

        String merged() {
            return left + right;
        }

        /** The form tokenizer.json stores: symbols never contain a space in byte-level BPE. */
        String asJson() {
            return left + " " + right;
        }
    }

    /**
     * @param vocab token text to id, in id order (LinkedHashMap), ids 0..size-1
     * @param merges merge rules by rank, the order in which encoding applies them
     */
    record Model(LinkedHashMap<String, Integer> vocab, List<Merge> merges) {}

    private ByteLevelBpeTrainer() {}

    /** GPT-2's {@code bytes_to_unicode}: a printable character for each of the 256 bytes. */
    static char[] bytesToUnicode() {
        char[] byteToChar = new char[256];
        boolean[] printable = new boolean[256];
        for (int b = '!'; b <= '~'; b++) printable[b] = true;
        for (int b = 0xA1; b <= 0xAC; b++) printable[b] = true;
        for (int b = 0xAE; b <= 0xFF; b++) printable[b] = true;
        int next = 256; // bytes that would print badly are moved above Latin-1, in byte order
        for (int b = 0; b < 256; b++) {
            byteToChar[b] = printable[b] ? (char) b : (char) next++;
        }
        return byteToChar;
    }

    /** Maps UTF-8 bytes to their byte-level characters. */
    static String toByteLevel(String text, char[] byteToChar) {
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        StringBuilder out = new StringBuilder(bytes.length);
        for (byte b : bytes) {
            out.append(byteToChar[b & 0xFF]);
        }
        return out.toString();
    }

    /**
     * Learns merges on {@code sample} until the vocabulary holds {@code vocabSize} tokens or no
     * adjacent pair occurs at least twice.
     *
     * @param initialVocab the special and byte tokens, in id order
     */
    static Model train(List<String> initialVocab, String sample, int vocabSize) {
        char[] byteToChar = bytesToUnicode();
        LinkedHashMap<String, Integer> vocab = new LinkedHashMap<>();
        for (String token : initialVocab) {
            vocab.putIfAbsent(token, vocab.size());
        }

        Map<String, Integer> wordCounts = new TreeMap<>();
        Matcher matcher = GPT2_SPLIT.matcher(sample);
        while (matcher.find()) {
            wordCounts.merge(toByteLevel(matcher.group(), byteToChar), 1, Integer::sum);
        }
        List<List<String>> words = new ArrayList<>(wordCounts.size()); // symbols of each word
        List<Integer> counts = new ArrayList<>(wordCounts.size());
        for (Map.Entry<String, Integer> word : wordCounts.entrySet()) {
            List<String> symbols = new ArrayList<>();
            word.getKey().chars().forEach(c -> symbols.add(String.valueOf((char) c)));
            words.add(symbols);
            counts.add(word.getValue());
        }

        List<Merge> merges = new ArrayList<>();
        while (vocab.size() < vocabSize) {
            Merge best = mostFrequentPair(words, counts);
            if (best == null) {
                break;
            }
            merges.add(best);
            // Two merges can spell the same string ("a"+"bc", "ab"+"c"): one id serves both.
            vocab.putIfAbsent(best.merged(), vocab.size());
            for (List<String> symbols : words) {
                applyMerge(symbols, best);
            }
        }
        return new Model(vocab, List.copyOf(merges));
    }

    /** The pair with the highest count >= 2, ties to the lexicographically smallest; or null. */
    private static Merge mostFrequentPair(List<List<String>> words, List<Integer> counts) {
        Map<Merge, Integer> pairCounts = new HashMap<>();
        for (int w = 0; w < words.size(); w++) {
            List<String> symbols = words.get(w);
            for (int i = 0; i + 1 < symbols.size(); i++) {
                pairCounts.merge(new Merge(symbols.get(i), symbols.get(i + 1)), counts.get(w), Integer::sum);
            }
        }
        Merge best = null;
        int bestCount = 1; // a pair seen once teaches nothing
        for (Map.Entry<Merge, Integer> pair : pairCounts.entrySet()) {
            int count = pair.getValue();
            if (count > bestCount
                    || (count == bestCount && best != null
                            && Merge.LEXICOGRAPHIC.compare(pair.getKey(), best) < 0)) {
                best = pair.getKey();
                bestCount = count;
            }
        }
        return best;
    }

    /** Replaces each occurrence of the pair, left to right, without overlaps. */
    private static void applyMerge(List<String> symbols, Merge merge) {
        for (int i = 0; i + 1 < symbols.size(); i++) {
            if (symbols.get(i).equals(merge.left()) && symbols.get(i + 1).equals(merge.right())) {
                symbols.set(i, merge.merged());
                symbols.remove(i + 1);
            }
        }
    }
}
