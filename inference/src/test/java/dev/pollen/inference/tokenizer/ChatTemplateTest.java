package dev.pollen.inference.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/** Expected strings are what transformers' apply_chat_template renders for these templates. */
class ChatTemplateTest {

    /** Qwen1.5-Chat's template, as a single line like in its tokenizer_config.json. */
    static final String CHATML = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
            + "{{ '<|im_start|>system\\nYou are a helpful assistant<|im_end|>\\n' }}{% endif %}"
            + "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
            + "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    /** Mistral-Instruct style, laid out with whitespace control as newer configs are. */
    static final String MISTRAL = """
            {{- bos_token }}
            {%- for message in messages %}
                {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
                    {{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}
                {%- endif %}
                {%- if message['role'] == 'user' %}
                    {{- '[INST] ' + message['content'].strip() + ' [/INST]' }}
                {%- elif message['role'] == 'assistant' %}
                    {{- ' ' + message['content'].strip() + eos_token }}
                {%- endif %}
            {%- endfor %}
            """;

    /** Llama 3 Instruct's template: a filter inside a concatenation, set, loop.index0. */
    static final String LLAMA3 = "{% set loop_messages = messages %}{% for message in loop_messages %}"
            + "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
            + "+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
            + "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
            + "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

    static final List<ChatMessage> CONVERSATION = List.of(
            ChatMessage.user("What is 2+2?"), ChatMessage.assistant("4"), ChatMessage.user("And 3+3?"));

    @Test
    @DisplayName("The Zephyr/TinyLlama template renders role markers, EOS after each message and the generation prompt")
    void zephyr() {
        ChatTemplate template = new ChatTemplate(TokenizerWriter.DEFAULT_CHAT_TEMPLATE, "<s>", "</s>");
        assertEquals("<|system|>\nBe brief.</s>\n<|user|>\nWhat is 2+2?</s>\n<|assistant|>\n4</s>\n"
                        + "<|user|>\nAnd 3+3?</s>\n<|assistant|>\n",
                template.render(List.of(ChatMessage.system("Be brief."), CONVERSATION.get(0), CONVERSATION.get(1),
                        CONVERSATION.get(2)), true));
        assertEquals("<|user|>\nHi</s>\n", template.render(List.of(ChatMessage.user("Hi")), false));
    }

    @Test
    @DisplayName("The ChatML/Qwen template adds the default system prompt and the assistant header")
    void chatMl() {
        ChatTemplate template = new ChatTemplate(CHATML, "", "<|im_end|>");
        assertEquals("<|im_start|>system\nYou are a helpful assistant<|im_end|>\n"
                        + "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
                        + "<|im_start|>assistant\n4<|im_end|>\n"
                        + "<|im_start|>user\nAnd 3+3?<|im_end|>\n"
                        + "<|im_start|>assistant\n",
                template.render(CONVERSATION, true));
        assertEquals("<|im_start|>system\nBe terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n",
                template.render(List.of(ChatMessage.system("Be terse."), ChatMessage.user("Hi")), false));
    }

    @Test
    @DisplayName("Whitespace control and .strip() render a Mistral prompt with no stray spaces or newlines")
    void mistral() {
        ChatTemplate template = new ChatTemplate(MISTRAL, "<s>", "</s>");
        assertEquals("<s>[INST] Hi [/INST] Hello!</s>[INST] Bye [/INST]",
                template.render(List.of(ChatMessage.user("  Hi "), ChatMessage.assistant("Hello! "),
                        ChatMessage.user("Bye")), true));
    }

    @Test
    @DisplayName("A filter binds tighter than + as in Jinja2, so Llama 3 trims only the content")
    void llama3() {
        ChatTemplate template = new ChatTemplate(LLAMA3, "<|begin_of_text|>", "<|eot_id|>");
        assertEquals("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
                        + "<|start_header_id|>assistant<|end_header_id|>\n\n",
                template.render(List.of(ChatMessage.user("  Hi there \n")), true));
    }

    @Test
    @DisplayName("raise_exception in a template becomes a ChatTemplateException carrying the template's message")
    void raiseException() {
        ChatTemplate template = new ChatTemplate(MISTRAL, "<s>", "</s>");
        ChatTemplateException e = assertThrows(ChatTemplateException.class,
                () -> template.render(List.of(ChatMessage.assistant("I speak first")), true));
        assertEquals("The chat template refused the conversation: "
                + "Conversation roles must alternate user/assistant/user/assistant/...", e.getMessage());
    }

    @Test
    @DisplayName("A template with a syntax error fails with a ChatTemplateException instead of partial output")
    void syntaxError() {
        ChatTemplate template = new ChatTemplate("{% for message in messages %}{{ message['content'] }}", "", "");
        ChatTemplateException e = assertThrows(ChatTemplateException.class,
                () -> template.render(List.of(ChatMessage.user("Hi")), false));
        assertTrue(e.getMessage().startsWith("The chat template failed"), e.getMessage());
    }

    @Test
    @DisplayName("Chat messages refuse a null role or content")
    void messageValidation() {
        assertThrows(NullPointerException.class, () -> new ChatMessage(null, "x"));
        assertThrows(NullPointerException.class, () -> new ChatMessage("user", null));
        assertThrows(IllegalArgumentException.class, () -> new ChatTemplate(" ", "", ""));
    }
}
